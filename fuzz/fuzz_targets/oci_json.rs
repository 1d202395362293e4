//! cargo-fuzz target: [`imago_fuzz::oci_json`] on any bytes.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| imago_fuzz::oci_json(data));
