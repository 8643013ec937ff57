//! Fuzz target `config`: see [`claimgate_fuzz::config`] for the input format and the
//! properties checked.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| claimgate_fuzz::config(data));
