//! The YAML validator (manifests and ksail.yaml) under its real limits.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| ksail::fuzzing::yaml(data));
