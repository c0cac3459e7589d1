//! Helpers shared by the CLI's Prosody tests: run `esession`, read its lines.
#![allow(
    dead_code,
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    reason = "test code"
)]

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Output, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use esession_testkit::Prosody;

pub(crate) const BIN: &str = env!("CARGO_BIN_EXE_esession");

/// `esession` with no config file, keyring or environment secrets of the user's.
pub(crate) fn esession(home: &Path) -> Command {
    let mut command = Command::new(BIN);
    command
        .env("HOME", home)
        .env("XDG_CONFIG_HOME", home.join("config"))
        .env("XDG_DATA_HOME", home.join("data"))
        .env_remove("ESESSION_PASSWORD")
        .env_remove("ESESSION_STORE_PASSPHRASE")
        .stdin(Stdio::null());
    command
}

/// The global flags for `user` on `server`.
pub(crate) fn account_args(server: &Prosody, home: &Path, user: &str, tls: bool) -> Vec<String> {
    let path = |name: String| home.join(name).display().to_string();
    let mut args = vec![
        "--jid".to_owned(),
        format!("{user}@localhost/cli"),
        "--host".to_owned(),
        "127.0.0.1".to_owned(),
        "--port".to_owned(),
        server.c2s_port().to_string(),
        "--password-file".to_owned(),
        path(format!("{user}.pw")),
        "--store".to_owned(),
        path(format!("{user}.db")),
        "--store-key-file".to_owned(),
        path(format!("{user}.key")),
    ];
    if tls {
        args.extend([
            "--ca-file".to_owned(),
            server.ca_file().display().to_string(),
        ]);
    } else {
        args.push("--insecure-plaintext-loopback".to_owned());
    }
    args
}

/// Forwards each line of `stream` (a child's stdout or stderr) to a channel.
pub(crate) fn lines(stream: impl std::io::Read + Send + 'static) -> mpsc::Receiver<String> {
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stream).lines() {
            let Ok(line) = line else { break };
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    rx
}

pub(crate) fn wait_line(
    rx: &mpsc::Receiver<String>,
    what: &str,
    within: Duration,
) -> Result<Vec<String>, String> {
    let deadline = Instant::now() + within;
    let mut seen = Vec::new();
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        match rx.recv_timeout(left) {
            Ok(line) => {
                let done = line.contains(what);
                seen.push(line);
                if done {
                    return Ok(seen);
                }
            }
            Err(_) => {
                return Err(format!(
                    "no line containing {what:?} within {within:?}; got {seen:?}"
                ));
            }
        }
    }
}

pub(crate) fn kill(child: &mut Child) {
    let _ = child.kill();
    let _ = child.wait();
}

pub(crate) fn show(output: &Output) -> String {
    format!(
        "{}\nstdout:\n{}\nstderr:\n{}",
        output.status,
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    )
}
