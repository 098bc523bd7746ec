//! Fuzzes the record_ops decoder: see `cairn::fuzzing::record_ops`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| cairn::fuzzing::record_ops(data));
