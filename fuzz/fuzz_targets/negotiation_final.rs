#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let _ = esession_wire::fuzzing::negotiation_final(data);
});
