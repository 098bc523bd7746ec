//! Fuzzes the snapshot decoder: see `cairn::fuzzing::snapshot`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| cairn::fuzzing::snapshot(data));
