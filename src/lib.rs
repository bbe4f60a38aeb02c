//! agedrop: a secure document drop for newsrooms.
//!
//! Sources upload files and messages through an onion service; the server encrypts
//! every byte to the newsroom's `age` recipients as it arrives and keeps only
//! ciphertext. Journalists decrypt offline. See `SECURITY.md` for the threat model.
//!
//! The crate is a library plus a thin `agedrop` binary. Its modules are named after the
//! domain: [`crypto`] is the only one that names `age` types, [`store`] owns the data
//! directory, [`submission`] turns an upload into sealed items, [`web`] serves the
//! source site and the journalist API, [`server`] runs listeners and connections.

#![forbid(unsafe_code)]
#![deny(missing_docs)]

pub mod account;
pub mod bundle;
pub mod cli;
pub mod client;
pub mod code;
pub mod config;
pub mod crypto;
pub mod cursor;
mod fsync;
mod hardening;
mod label;
pub mod logging;
mod nofollow;
pub mod offline;
mod random;
pub mod server;
pub mod store;
pub mod submission;
mod time;
pub mod web;

pub use config::{Config, ConfigError, Listen};
pub use crypto::Recipients;
pub use store::{Store, StoreError};
