//! `esession`: the XMPP Encrypted Sessions command-line client.
//!
//! Today it offers `esession demo`, which runs the crypto-suite self-test; the
//! two-party in-memory demo, chat, send, listen, trust and keys commands arrive
//! with the protocol core and the XMPP adapter.

use std::process::ExitCode;

use clap::{Parser, Subcommand};

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
    /// Run the built-in demonstration. For now: the crypto-suite self-test
    /// (MODP Diffie-Hellman, key derivation, SAS, CTR encryption + HMAC,
    /// signatures, published known answers). Exits non-zero if any check fails.
    Demo,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli.command {
        Command::Demo => match selftest::run() {
            Ok(()) => ExitCode::SUCCESS,
            Err(failure) => {
                eprintln!("esession demo: FAILED: {failure}");
                ExitCode::FAILURE
            }
        },
    }
}
