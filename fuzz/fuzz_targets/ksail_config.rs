//! The ksail.yaml loader and the effective settings.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| ksail::fuzzing::ksail_config(data));
