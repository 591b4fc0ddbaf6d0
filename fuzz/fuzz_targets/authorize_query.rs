#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| idp::fuzzing::authorize_query(data));
