//! Fuzzes the frame decoder: see `cairn::fuzzing::frame`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| cairn::fuzzing::frame(data));
