//! Issue 15: the tool documents and installs itself: shell completions and
//! the manual page come from the same clap definitions as `--help`, so they
//! list every command (`serve` and `history` included) and every option.

#![allow(clippy::unwrap_used, clippy::expect_used, reason = "test code")]

mod common;
use common::*;

fn stdout_of(args: &[&str]) -> String {
    let home = tempfile::tempdir().unwrap();
    let out = esession(home.path()).args(args).output().unwrap();
    assert!(out.status.success(), "{args:?}: {}", show(&out));
    String::from_utf8(out.stdout).unwrap()
}

#[test]
fn completions_cover_every_command_and_option() {
    let bash = stdout_of(&["completions", "bash"]);
    assert!(bash.contains("_esession()"), "{bash}");
    for word in [
        "serve",
        "history",
        "chat",
        "listen",
        "--archiving",
        "--otr",
        "--forget",
    ] {
        assert!(bash.contains(word), "bash completion lacks {word}");
    }
    let zsh = stdout_of(&["completions", "zsh"]);
    assert!(zsh.starts_with("#compdef esession"), "{zsh}");
    let fish = stdout_of(&["completions", "fish"]);
    assert!(fish.contains("complete -c esession"), "{fish}");
}

#[test]
fn the_manual_page_is_roff_with_every_command() {
    let page = stdout_of(&["man"]);
    assert!(
        page.starts_with(".ie") || page.contains(".TH esession"),
        "{page}"
    );
    for word in ["serve", "history", "completions", "archiving"] {
        assert!(page.contains(word), "the manual page lacks {word}");
    }
}
