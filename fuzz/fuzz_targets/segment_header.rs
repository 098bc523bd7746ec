//! Fuzzes the segment_header decoder: see `cairn::fuzzing::segment_header`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| cairn::fuzzing::segment_header(data));
