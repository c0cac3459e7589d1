#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let _ = esession::fuzzing::decrypt_stanza(data);
});
