//! Fuzz target `path_route`: see [`claimgate_fuzz::path_route`] for the input format and the
//! properties checked.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| claimgate_fuzz::path_route(data));
