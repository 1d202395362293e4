//! cargo-fuzz target: [`imago_fuzz::expand`] on any bytes.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| imago_fuzz::expand(data));
