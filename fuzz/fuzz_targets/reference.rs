//! cargo-fuzz target: [`imago_fuzz::reference`] on any bytes.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| imago_fuzz::reference(data));
