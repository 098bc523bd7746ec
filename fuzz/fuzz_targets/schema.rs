//! Fuzzes stored schema descriptions and decoding records by a writer's description: see `cairn::fuzzing::schema`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| cairn::fuzzing::schema(data));
