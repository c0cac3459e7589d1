#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let _ = esession_wire::fuzzing::published_key(data);
});
