//! cargo-fuzz target: [`imago_fuzz::www_authenticate`] on any bytes.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| imago_fuzz::www_authenticate(data));
