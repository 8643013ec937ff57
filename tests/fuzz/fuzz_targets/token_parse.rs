//! Fuzz target `token_parse`: see [`claimgate_fuzz::token_parse`] for the input format and the
//! properties checked.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| claimgate_fuzz::token_parse(data));
