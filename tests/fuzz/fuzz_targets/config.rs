//! The config file parser. Checks: no panic on any text; every error names a config
//! key or the TOML position (it is shown to an admin as is).
#![no_main]

use std::path::Path;

use agedrop::Config;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|input: &[u8]| {
    let Ok(text) = std::str::from_utf8(input) else {
        return;
    };
    if let Err(err) = Config::parse(text, Path::new("/etc/agedrop")) {
        assert!(!err.to_string().is_empty());
    }
});
