#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let _ = esession::fuzzing::offline_init(data);
});
