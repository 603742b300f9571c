//! The WWW-Authenticate challenge parser.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| ksail::fuzzing::www_authenticate(data));
