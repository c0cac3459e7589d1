//! `esession`: the XMPP Encrypted Sessions command-line client.
//!
//! `esession demo` runs Alice and Bob in one process over an in-memory router;
//! `esession selftest` checks the crypto suite. Chat, send, listen, trust and
//! keys commands arrive with the XMPP adapter.

use std::process::ExitCode;

use clap::{Parser, Subcommand};

mod demo;
mod rng;
mod selftest;

/// End-to-end encrypted XMPP chat with XEP-0116 Encrypted Sessions.
#[derive(Parser)]
#[command(name = "esession", version, about, long_about = None)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Alice and Bob negotiate an ESession in this process over an in-memory
    /// router: the four negotiation messages, both SAS strings, an encrypted
    /// message on the wire and decrypted, a second session authenticated by the
    /// retained secret, and termination. Exits non-zero if any step fails.
    Demo,
    /// Check the crypto suite against published known answers and itself.
    Selftest,
}

fn report(what: &str, result: Result<(), String>) -> ExitCode {
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(failure) => {
            eprintln!("esession {what}: FAILED: {failure}");
            ExitCode::FAILURE
        }
    }
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli.command {
        Command::Demo => report("demo", demo::run()),
        Command::Selftest => report("selftest", selftest::run()),
    }
}
