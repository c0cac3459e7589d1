//! Replays the fuzz corpora of this crate's parsers on the stable toolchain (style practice 17).
//!
//! Every file of `fuzz/corpus/<target>/` goes through the same function the fuzz target calls
//! (`esession_wire::fuzzing`), which asserts its properties (round trips, NORM idempotence ...)
//! and must not panic. File names also state expectations: `valid-*` must be accepted and
//! `invalid-*` refused by the parser under test. Regression inputs found by fuzzing are added
//! to the same directories (fuzz/README.md).

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    reason = "test code"
)]

use std::path::{Path, PathBuf};

use esession_wire::fuzzing;

fn corpus(target: &str) -> Vec<(String, Vec<u8>)> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../fuzz/corpus")
        .join(target);
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|entry| entry.unwrap().path())
        .filter(|path| path.is_file())
        .collect();
    files.sort();
    assert!(!files.is_empty(), "{} has no seeds", dir.display());
    files
        .into_iter()
        .map(|path| {
            let name = path.file_name().unwrap().to_string_lossy().into_owned();
            (name, std::fs::read(&path).unwrap())
        })
        .collect()
}

/// Runs every file of `target` through `run` and checks the `valid-`/`invalid-` prefixes.
fn replay(target: &str, run: fn(&[u8]) -> bool) {
    for (name, data) in corpus(target) {
        let accepted = run(&data);
        if name.starts_with("valid-") {
            assert!(accepted, "{target}/{name} must be accepted");
        } else if name.starts_with("invalid-") {
            assert!(!accepted, "{target}/{name} must be refused");
        }
    }
}

#[test]
fn form_corpus_replays_with_round_trips() {
    replay("form", fuzzing::data_form);
}

#[test]
fn normalize_corpus_replays_idempotently() {
    replay("normalize", fuzzing::normalization);
}

#[test]
fn xml_fragment_corpus_replays_with_round_trips() {
    replay("xml_fragment", fuzzing::xml_fragment);
}

/// The fuzz functions refuse what is not a UTF-8 XML document without running anything.
#[test]
fn fuzz_functions_refuse_non_xml() {
    for data in [&b""[..], b"\xff\xfe<x/>", b"not xml", b"<a>"] {
        assert!(!fuzzing::data_form(data));
        assert!(!fuzzing::normalization(data));
    }
    assert!(!fuzzing::xml_fragment(b"\xff"));
    assert!(!fuzzing::xml_fragment(b"<a>"));
    assert!(fuzzing::xml_fragment(b"just text"));
}

#[test]
fn pubkey_corpus_replays_with_round_trips() {
    replay("pubkey", fuzzing::published_key);
}

#[test]
fn negotiation_message_corpora_replay() {
    replay("negotiation_offer", fuzzing::negotiation_offer);
    replay("negotiation_answer", fuzzing::negotiation_answer);
    replay("negotiation_completion", fuzzing::negotiation_completion);
    replay("negotiation_final", fuzzing::negotiation_final);
}
