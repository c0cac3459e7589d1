#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let _ = esession::fuzzing::hostile_peers(data);
});
