//! Fuzz target `keysource`: see [`claimgate_fuzz::keysource`] for the input format and the
//! properties checked.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| claimgate_fuzz::keysource(data));
