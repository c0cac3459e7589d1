//! `esession`: the XMPP Encrypted Sessions command-line client.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

mod account;
mod chat;
mod demo;
mod history;
mod json_schema;
mod outbox;
mod present;
mod profile;
mod published;
mod rng;
mod roster;
mod screen;
mod scripted;
mod selftest;
mod serve;
mod settings;
mod trust_keys;

/// End-to-end encrypted XMPP chat with XEP-0116 Encrypted Sessions (ESessions).
///
/// Settings come from flags, then the config file ($XDG_CONFIG_HOME/esession/config.toml:
/// an [account] table with jid, host, port, ca_file, password_file,
/// insecure_plaintext_loopback, stanzas (e.g. ["message", "presence", "iq"]
/// to encrypt presence and iq too; default ["message"]), archiving (the off-the-record policy:
/// require, prefer (default), approve, concede, oppose, forbid), a [contact."JID"] table per
/// contact with archiving, and a [store] table with path, key_file, passphrase_file). The account password is read from --password-file,
/// $ESESSION_PASSWORD or a prompt, never from the command line. Everything we
/// remember about contacts (retained secrets, keys, verifications) lives in an
/// encrypted SQLite trust store unlocked with a passphrase
/// ($ESESSION_STORE_PASSPHRASE, --store-passphrase-file or a prompt) or a key file.
#[derive(Parser)]
#[command(name = "esession", version, about, long_about)]
struct Cli {
    #[command(flatten)]
    global: settings::Global,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Chat with CONTACT in an encrypted session: shows the short authentication
    /// string to compare out of band, security alerts, a status tag
    /// ([encrypted][verified], [encrypted][UNVERIFIED], [not encrypted],
    /// [negotiating], [connecting]) and messages with sender and local time.
    /// Every message is delivered (encrypted receipt), reported, or re-sent in
    /// a new session after a loss. The in-chat commands are listed at the end.
    ///
    /// The wire profile for CONTACT is the one saved with `esession trust
    /// profile`, or --profile for this run (the profiles are described at the
    /// end).
    #[command(after_long_help = format!("{}\n\n{}", chat::HELP, profile::PROFILES_HELP))]
    Chat {
        /// The contact's JID (bare, or full to address one client).
        contact: String,
        /// Wire profile for CONTACT in this run only (not saved; `esession
        /// trust profile CONTACT gajim` saves it): `gajim` to talk to Gajim
        /// 0.12-0.16's ESessions (less standard, see below), `standard` to
        /// override a saved `gajim`.
        #[arg(long, value_enum, value_name = "PROFILE")]
        profile: Option<profile::ProfileName>,
        /// Keep sending after a broken retained-secret chain or a changed key
        /// is reported, without /ack (the warning is still shown).
        #[arg(long)]
        send_despite_warnings: bool,
        /// Approve CONTACT's request to see our presence when it comes
        /// (otherwise the chat asks you to type /approve).
        #[arg(long)]
        approve_subscription: bool,
    },
    /// Show the messages kept with CONTACT (oldest first), or forget them.
    /// Only sessions that may be logged (logging=may) are kept, sealed in the
    /// trust store with the time, the direction and whether the session was
    /// verified; off-the-record sessions (logging=mustnot) are never kept.
    History {
        /// The contact's bare JID.
        contact: String,
        /// Only messages since this date (YYYY-MM-DD, local time) or Unix time.
        #[arg(long, value_name = "DATE")]
        since: Option<String>,
        /// Only the newest N messages.
        #[arg(long, value_name = "N")]
        last: Option<usize>,
        /// One JSON object per message and line: peer, thread, direction
        /// (sent/received), time (Unix seconds), verified, body.
        #[arg(long)]
        json: bool,
        /// Delete the history with CONTACT for good, with every copy the
        /// trust store's files still hold.
        #[arg(long, conflicts_with_all = ["since", "last", "json"])]
        forget: bool,
    },
    /// Send one encrypted MESSAGE (or stdin) to CONTACT, then end the session.
    ///
    /// Uses CONTACT's saved wire profile (`esession trust profile`), or
    /// --profile for this run (the profiles are described at the end).
    #[command(after_long_help = profile::PROFILES_HELP)]
    Send {
        /// The contact's JID.
        contact: String,
        /// The message; read from standard input if absent.
        message: Option<String>,
        /// Seconds to wait for the session.
        #[arg(long, default_value_t = 30)]
        timeout: u64,
        /// Wire profile for CONTACT in this run only (not saved): `gajim` for
        /// Gajim 0.12-0.16 (less standard), `standard` to override a saved one.
        #[arg(long, value_enum, value_name = "PROFILE")]
        profile: Option<profile::ProfileName>,
        /// CONTACT is offline: encrypt to the options they published before
        /// leaving (XEP-0187), signed by a key of theirs you verified; they
        /// read it when they are back (`esession listen`).
        #[arg(long)]
        offline: bool,
        /// One JSON object per line on standard output (docs/JSON.md):
        /// server_archive, established, sent (or sent_offline), then
        /// delivered or not_delivered, or error.
        #[arg(long, conflicts_with = "offline")]
        json: bool,
    },
    /// Accept encrypted sessions and print received messages (one JSON object
    /// per line with --json). Each contact's saved wire profile (`esession
    /// trust profile`) applies to its offers.
    #[command(after_long_help = scripted::JSON_HELP)]
    Listen {
        /// One JSON object per line.
        #[arg(long)]
        json: bool,
        /// Which offers to accept.
        #[arg(long, value_enum, default_value = "any")]
        accept: scripted::AcceptPolicy,
        /// Exit after this many messages.
        #[arg(long)]
        count: Option<usize>,
    },
    /// A machine interface for both roles: JSON-lines commands on standard
    /// input (start, send, verify, distrust, rekey, terminate, secret,
    /// approve, archiving, status, quit) and JSON-lines events on standard output (the
    /// events of `listen --json`, plus the answers to commands), as described
    /// in docs/JSON.md. Offers are accepted as `listen --accept` says. The end
    /// of standard input, `quit`, SIGINT or SIGTERM terminates every session
    /// and exits 0.
    #[command(after_long_help = crate::serve::COMMANDS_HELP)]
    Serve {
        /// Which offers to accept.
        #[arg(long, value_enum, default_value = "any")]
        accept: scripted::AcceptPolicy,
    },
    /// Print the completion script for SHELL to standard output, e.g.
    /// `esession completions bash > ~/.local/share/bash-completion/completions/esession`.
    Completions {
        /// bash, zsh, fish, elvish or powershell.
        #[arg(value_enum)]
        shell: clap_complete::Shell,
    },
    /// Print the manual page (roff) to standard output, e.g.
    /// `esession man > ~/.local/share/man/man1/esession.1`.
    Man,
    /// The contact list and presence subscriptions: list, add, remove,
    /// approve. Logs in.
    #[command(subcommand)]
    Roster(roster::RosterCommand),
    /// Manage what we remember about contacts.
    #[command(subcommand)]
    Trust(trust_keys::TrustCommand),
    /// Manage our signing keys; `keys list` also lists the contacts' keys.
    #[command(subcommand)]
    Keys(trust_keys::KeysCommand),
    /// Before going offline: publish signed, expiring XEP-0187 options so that
    /// contacts who verified your key can write to you meanwhile (kept sealed
    /// in the store; `esession listen` reads what they wrote when you are back).
    OfflinePublish {
        /// How long the options stay usable, in hours (short is safer, OFF-19).
        #[arg(long, default_value_t = 24)]
        hours: u64,
    },
    /// Create a key file (mode 0600) to unlock the trust store without a passphrase.
    KeyFile {
        /// Where to write it.
        path: PathBuf,
    },
    /// Alice and Bob negotiate an ESession in this process over an in-memory
    /// router: the four negotiation messages, both SAS strings, an encrypted
    /// message on the wire and decrypted, a second session authenticated by the
    /// retained secret, and termination. Exits non-zero if any step fails.
    Demo,
    /// Check the crypto suite against published known answers and itself.
    Selftest,
}

/// Diagnostics through `tracing` to standard error: RUST_LOG when set, else
/// warnings, and more with each -v. What -v logs never includes key
/// material, passwords or message text (the core logs nothing; the adapter
/// names JIDs, threads and steps only; tokio-xmpp's raw stream log stays
/// off unless RUST_LOG turns it on).
fn diagnostics(verbose: u8) {
    // tokio-xmpp logs the raw stream (SASL exchanges included) at trace:
    // never by -v; only a RUST_LOG that asks for it shows it.
    // tokio-xmpp's own lines: none by default (they would interrupt the
    // chat's line editor), at most `info` with -v (its debug level can
    // print whole stanzas).
    let level = match verbose {
        0 => "warn,tokio_xmpp=off",
        1 => "info,tokio_xmpp=warn",
        2 => "debug,tokio_xmpp=info,xso=info",
        _ => "trace,tokio_xmpp=info,xso=info,rustls=debug",
    };
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(level));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .without_time()
        .try_init();
}

fn report(what: &str, result: Result<(), String>) -> ExitCode {
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(failure) => {
            eprintln!("esession {what}: {failure}");
            ExitCode::FAILURE
        }
    }
}

fn runtime() -> Result<tokio::runtime::Runtime, String> {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| e.to_string())
}

/// The stack of the thread everything runs on (issue 11): tokio-xmpp builds
/// each received stanza recursively (xso, minidom), one frame per nesting
/// level, and a server relays whatever nesting fits in its stanza size limit
/// (Prosody: 256 KiB, about 37,000 levels). The main thread's 8 MiB overflow
/// on that and abort the process; this reserve (address space, committed
/// only as used) holds it with room to spare.
const STACK_SIZE: usize = 1 << 30;

fn main() -> ExitCode {
    match std::thread::Builder::new()
        .name("esession".to_owned())
        .stack_size(STACK_SIZE)
        .spawn(run)
    {
        Ok(thread) => thread.join().unwrap_or(ExitCode::FAILURE),
        Err(_) => run(),
    }
}

fn run() -> ExitCode {
    let cli = Cli::parse();
    diagnostics(cli.global.verbose);
    let settings = || settings::Settings::resolve(&cli.global);
    match cli.command {
        Command::Demo => report("demo", demo::run()),
        Command::Completions { shell } => {
            clap_complete::generate(
                shell,
                &mut <Cli as clap::CommandFactory>::command(),
                "esession",
                &mut std::io::stdout(),
            );
            ExitCode::SUCCESS
        }
        Command::Man => report(
            "man",
            clap_mangen::Man::new(<Cli as clap::CommandFactory>::command())
                .render(&mut std::io::stdout())
                .map_err(|e| format!("the manual page could not be written: {e}")),
        ),
        Command::Selftest => report("selftest", selftest::run()),
        Command::KeyFile { ref path } => report(
            "key-file",
            esession_store::Store::generate_key_file(path).map_err(|e| e.to_string()),
        ),
        Command::Chat {
            ref contact,
            profile,
            send_despite_warnings,
            approve_subscription,
        } => report(
            "chat",
            settings().and_then(|s| {
                let contact = s.check_contact(contact)?;
                // The chat's stdin reader may be blocked in a read: do not
                // wait for it when the chat ends.
                let runtime = runtime()?;
                let result = runtime.block_on(chat::run(
                    &s,
                    &contact,
                    profile,
                    send_despite_warnings,
                    approve_subscription,
                ));
                runtime.shutdown_background();
                result
            }),
        ),
        Command::Send {
            ref contact,
            ref message,
            offline: true,
            ..
        } => report(
            "send",
            settings().and_then(|s| {
                let contact = s.check_contact(contact)?;
                let text = match message {
                    Some(text) => text.clone(),
                    None => std::io::read_to_string(std::io::stdin()).map_err(|e| {
                        format!("the message could not be read from standard input: {e}")
                    })?,
                };
                runtime()?.block_on(published::send_offline(&s, &contact, text.trim_end()))
            }),
        ),
        Command::OfflinePublish { hours } => report(
            "offline-publish",
            settings().and_then(|s| runtime()?.block_on(published::publish_offline(&s, hours))),
        ),
        Command::Send {
            ref contact,
            ref message,
            timeout,
            profile,
            offline: false,
            json,
        } => report(
            "send",
            settings().and_then(|s| {
                let contact = s.check_contact(contact)?;
                runtime()?.block_on(scripted::send(
                    &s,
                    &contact,
                    message.clone(),
                    timeout,
                    profile,
                    json,
                ))
            }),
        ),
        Command::Listen {
            json,
            accept,
            count,
        } => report(
            "listen",
            settings().and_then(|s| {
                runtime()?.block_on(scripted::listen(&s, json, accept, count, false))
            }),
        ),
        Command::Serve { accept } => report(
            "serve",
            settings()
                .and_then(|s| runtime()?.block_on(scripted::listen(&s, true, accept, None, true))),
        ),
        Command::History {
            ref contact,
            ref since,
            last,
            json,
            forget,
        } => report(
            "history",
            settings().and_then(|s| {
                let contact = s.check_contact(contact)?;
                let contact = contact.split('/').next().unwrap_or(&contact).to_owned();
                history::run(&s, &contact, since.as_deref(), last, json, forget)
            }),
        ),
        Command::Roster(command) => report(
            "roster",
            settings().and_then(|s| runtime()?.block_on(roster::run(&s, command))),
        ),
        Command::Trust(command) => report(
            "trust",
            settings().and_then(|s| trust_keys::trust(&s, command)),
        ),
        Command::Keys(command) => report(
            "keys",
            settings().and_then(|s| trust_keys::keys(&s, command)),
        ),
    }
}
