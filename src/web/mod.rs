//! HTTP: the source site ([`source`]) and the journalist API ([`journalist`]), each on
//! its own listener.

pub mod csrf;
pub mod journalist;
mod pages;
pub mod source;
