//! Fuzz target `policy`: see [`claimgate_fuzz::policy`] for the input format and the
//! properties checked.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| claimgate_fuzz::policy(data));
