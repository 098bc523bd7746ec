//! Fuzzes the log scan over several segments: see `cairn::fuzzing::log_input`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| cairn::fuzzing::log_input(data));
