//! Fuzz target `verify`: see [`claimgate_fuzz::verify`] for the input format and the
//! properties checked.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    claimgate_fuzz::verify(data);
});
