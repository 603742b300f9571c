//! The OCI reference and registry string parsers and the name resolver.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| ksail::fuzzing::oci_reference(data));
