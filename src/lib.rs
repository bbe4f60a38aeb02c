//! agedrop: a secure document drop for newsrooms.
//!
//! Sources upload files and messages through an onion service; the server encrypts
//! every byte to the newsroom's `age` recipients as it arrives and keeps only
//! ciphertext. Journalists decrypt offline. SECURITY.md has the threat model;
//! docs/ARCHITECTURE.md the modules, the data flow and the invariants.
//!
//! The binary needs only [`cli`]; the modules made public besides are those the tests
//! and fuzz targets drive directly: the formats ([`bundle`], [`code`], [`config`]),
//! [`crypto`], [`offline`], [`store`] and [`submission`].

#![forbid(unsafe_code)]
#![deny(missing_docs)]

mod account;
mod backup;
mod budget;
pub mod bundle;
mod check;
pub mod cli;
mod client;
pub mod code;
pub mod config;
pub mod crypto;
mod cursor;
pub mod desk;
pub mod desks;
mod face;
mod fsync;
mod hardening;
mod label;
mod logging;
mod metrics;
mod nofollow;
pub mod offline;
mod random;
mod rate;
mod server;
mod sources;
mod sqlite;
pub mod store;
pub mod submission;
mod time;
mod watch;
mod web;
mod x509;

pub use config::{Config, ConfigError, Listen};
pub use crypto::Recipients;
pub use store::{Store, StoreError};
