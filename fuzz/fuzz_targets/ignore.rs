//! cargo-fuzz target: [`imago_fuzz::ignore`] on any bytes.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| imago_fuzz::ignore(data));
