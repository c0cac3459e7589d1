//! Helpers shared by the CLI's Prosody and ejabberd tests: run `esession`, read its lines.
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

use esession_testkit::{Prosody, XmppServer};

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
pub(crate) fn account_args(
    server: &dyn XmppServer,
    home: &Path,
    user: &str,
    tls: bool,
) -> Vec<String> {
    account_args_on(server, home, user, tls, server.c2s_port())
}

/// Like [`account_args`], connecting to 127.0.0.1:`port` (a relay to `server`).
pub(crate) fn account_args_on(
    server: &dyn XmppServer,
    home: &Path,
    user: &str,
    tls: bool,
    port: u16,
) -> Vec<String> {
    let path = |name: String| home.join(name).display().to_string();
    let mut args = vec![
        "--jid".to_owned(),
        format!("{user}@localhost/cli"),
        "--host".to_owned(),
        "127.0.0.1".to_owned(),
        "--port".to_owned(),
        port.to_string(),
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

/// A running `esession` with its input (chat) and every line it printed so far.
pub(crate) struct Running {
    pub(crate) name: &'static str,
    pub(crate) child: Child,
    pub(crate) input: Option<std::process::ChildStdin>,
    pub(crate) output: mpsc::Receiver<String>,
    pub(crate) seen: Vec<String>,
}

impl Running {
    /// Waits up to `secs` for a line containing `what`; returns the lines up to it.
    pub(crate) fn wait(&mut self, what: &str, secs: u64) -> Vec<String> {
        match wait_line(&self.output, what, Duration::from_secs(secs)) {
            Ok(lines) => {
                self.seen.extend(lines.iter().cloned());
                lines
            }
            Err(e) => {
                kill(&mut self.child);
                panic!("{}: {e}\nbefore: {:#?}", self.name, self.seen);
            }
        }
    }

    /// Types `line` and Enter.
    pub(crate) fn type_line(&mut self, line: &str) {
        use std::io::Write as _;
        writeln!(self.input.as_mut().expect("a chat"), "{line}").unwrap();
    }

    /// Everything printed so far, after `secs` more seconds.
    pub(crate) fn drain(&mut self, secs: u64) -> Vec<String> {
        std::thread::sleep(Duration::from_secs(secs));
        let more: Vec<String> = self.output.try_iter().collect();
        self.seen.extend(more);
        self.seen.clone()
    }

    /// `/quit`, and the process exits with success within 5 s.
    pub(crate) fn quit(mut self) {
        self.type_line("/quit");
        let deadline = Instant::now() + Duration::from_secs(5);
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                assert!(status.success(), "{}: chat exited with {status}", self.name);
                return;
            }
            if Instant::now() > deadline {
                kill(&mut self.child);
                panic!("{}: chat did not exit within 5 s of /quit", self.name);
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

/// Passwords and store key files for `users` in `home`.
pub(crate) fn prepare_home(home: &Path, users: &[&str]) {
    for user in users {
        std::fs::write(home.join(format!("{user}.pw")), format!("{user}-pw\n")).unwrap();
        let made = esession(home)
            .arg("key-file")
            .arg(home.join(format!("{user}.key")))
            .output()
            .unwrap();
        assert!(made.status.success(), "key-file: {}", show(&made));
    }
}

/// `esession [extra] listen --json` as `user`@localhost/cli, once logged in.
pub(crate) fn listen(
    home: &Path,
    server: &dyn XmppServer,
    user: &'static str,
    extra: &[&str],
) -> Running {
    let mut child = esession(home)
        .args(account_args(server, home, user, true))
        .args(extra)
        .args(["listen", "--json"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let output = lines(child.stdout.take().unwrap());
    let err = lines(child.stderr.take().unwrap());
    let logged_in = format!("Logged in as {user}@localhost/cli");
    if let Err(e) = wait_line(&err, &logged_in, Duration::from_secs(30)) {
        kill(&mut child);
        panic!("{user}'s listen: {e}");
    }
    Running {
        name: user,
        child,
        input: None,
        output,
        seen: Vec::new(),
    }
}

/// `esession [extra] chat CONTACT` as `user`@localhost/cli, its input piped.
pub(crate) fn chat(
    home: &Path,
    server: &dyn XmppServer,
    user: &'static str,
    extra: &[&str],
    contact: &str,
) -> Running {
    chat_on(home, server, server.c2s_port(), user, extra, contact)
}

/// Like [`chat`], connecting to 127.0.0.1:`port` (a relay to `server`).
pub(crate) fn chat_on(
    home: &Path,
    server: &dyn XmppServer,
    port: u16,
    user: &'static str,
    extra: &[&str],
    contact: &str,
) -> Running {
    let mut child = esession(home)
        .args(account_args_on(server, home, user, true, port))
        .args(extra)
        .args(["chat", contact])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let input = child.stdin.take();
    let output = lines(child.stdout.take().unwrap());
    Running {
        name: user,
        child,
        input,
        output,
        seen: Vec::new(),
    }
}

/// A private Prosody for `localhost` (no archive) with alice and bob.
pub(crate) fn localhost_with_alice_and_bob(prosody: &esession_testkit::Installed) -> Prosody {
    let server = prosody.server("localhost", esession_testkit::Archive::Off);
    server.register("alice", "alice-pw");
    server.register("bob", "bob-pw");
    server
}

/// A private ejabberd for `localhost` with alice and bob.
pub(crate) fn ejabberd_localhost_with_alice_and_bob(
    ejabberd: &esession_testkit::ejabberd::Installed,
) -> esession_testkit::Ejabberd {
    let server = ejabberd.server("localhost", &esession_testkit::ejabberd::Options::default());
    server.register_all(&[("alice", "alice-pw"), ("bob", "bob-pw")]);
    server
}

/// Runs `esession ARGS` as `user` on `server`; its stdout and stderr, after
/// checking the exit status is `success`.
pub(crate) fn run_as(
    home: &std::path::Path,
    server: &esession_testkit::Prosody,
    user: &str,
    args: &[&str],
    success: bool,
) -> String {
    let out = esession(home)
        .args(account_args(server, home, user, true))
        .args(args)
        .output()
        .unwrap();
    assert_eq!(out.status.success(), success, "{args:?}: {}", show(&out));
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}
