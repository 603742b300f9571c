//! The docker config.json reader (no credential helper runs).
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| ksail::fuzzing::docker_config(data));
