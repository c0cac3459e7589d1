//! Private ejabberd servers for tests: Debian's `ejabberd` package (23.01),
//! a config in a temporary directory, loopback only, free ports, accounts
//! made with `ejabberdctl register`, started in the foreground as a child
//! process group and stopped by the fixture (see
//! `/work/shared/notes/ejabberd.md`).
//!
//! Each [`Ejabberd`] owns one directory:
//!
//! ```text
//! etc/ejabberd.yml      the config: one host, c2s with STARTTLS required,
//!                       optionally s2s; SASL at ejabberd's defaults
//!                       (SCRAM-SHA-1-PLUS offered) unless a test disables some
//! etc/ejabberdctl.cfg   the Erlang side: own node name, cookie and
//!                       distribution port on 127.0.0.1 (no epmd)
//! etc/inetrc            the Erlang resolver: hosts from "file", DNS only from
//!                       the test's own responder (for s2s SRV lookups)
//! etc/ejabberdctl       Debian's ejabberdctl, run as the current user
//! certs/                a private CA (also the clients' CA file) and a
//!                       CA:FALSE leaf for the host, signed by it
//! spool/                Mnesia: accounts, rosters, offline messages, MAM
//! logs/ejabberd.log     the log the readiness check reads
//! ```
//!
//! ejabberdctl switches to the `ejabberd` user when run as root; the copy in
//! `etc/` has that switch removed so that the instance runs as whoever runs
//! the tests (root in CI: ejabberd warns, and works).

use std::io::Write as _;
use std::net::SocketAddr;
use std::os::unix::process::CommandExt as _;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use esession_xmpp::{ConnectOptions, TransportSecurity};

/// How long the server may take to start (about 2 s here).
const READY_TIMEOUT: Duration = Duration::from_secs(40);

/// Start attempts before giving up (a new set of free ports each time).
const ATTEMPTS: usize = 3;

/// Where Debian installs ejabberdctl.
const EJABBERDCTL: &str = "/usr/sbin/ejabberdctl";

/// Proof that ejabberd is installed; see [`crate::ejabberd_or_skip`].
#[derive(Clone, Copy, Debug)]
pub struct Installed(());

fn on_path(name: &str) -> bool {
    std::env::var_os("PATH").is_some_and(|path| {
        std::env::split_paths(&path)
            .any(|dir| std::fs::metadata(dir.join(name)).is_ok_and(|m| m.is_file()))
    })
}

/// Whether ejabberd (`/usr/sbin/ejabberdctl`, `erl`) and `openssl` are there.
pub fn installed() -> Option<Installed> {
    let ctl = std::fs::metadata(EJABBERDCTL).is_ok_and(|m| m.is_file());
    (ctl && on_path("erl") && on_path("openssl")).then_some(Installed(()))
}

/// How ejabberd stores passwords, which decides the SCRAM mechanisms it offers.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum PasswordStorage {
    /// `auth_password_format: scram` with the default hash (SHA-1), as
    /// Debian's config: SCRAM-SHA-1(-PLUS) and PLAIN are offered.
    #[default]
    ScramSha1,
    /// `auth_password_format: plain`: SCRAM-SHA-1/256/512 (each with -PLUS)
    /// and PLAIN are offered.
    Plain,
}

/// How to configure one server.
#[derive(Clone, Debug, Default)]
pub struct Options {
    /// Password storage (and so the SCRAM mechanisms offered).
    pub passwords: PasswordStorage,
    /// `disable_sasl_mechanisms`: mechanisms not to offer.
    pub disabled_mechanisms: Vec<String>,
}

/// Federation settings of one server.
#[derive(Clone, Debug)]
pub struct S2s {
    /// The s2s listener's port on 127.0.0.1.
    pub port: u16,
    /// The DNS server ejabberd asks for other servers' SRV records.
    pub dns: SocketAddr,
    /// Extra certificates (PEM) to trust for other servers.
    pub trust: Vec<PathBuf>,
}

impl Installed {
    /// One server for `domain`, c2s only.
    pub fn server(&self, domain: &str, options: &Options) -> Ejabberd {
        self.launch(domain, options, None)
    }

    /// One server for `domain` with s2s (see [`S2s`]).
    pub fn federated_server(&self, domain: &str, options: &Options, s2s: &S2s) -> Ejabberd {
        self.launch(domain, options, Some(s2s))
    }

    fn launch(&self, domain: &str, options: &Options, s2s: Option<&S2s>) -> Ejabberd {
        let mut failures = Vec::new();
        for _ in 0..ATTEMPTS {
            let spec = Spec {
                domain: domain.to_owned(),
                options: options.clone(),
                c2s_port: crate::free_port(),
                dist_port: crate::free_port(),
                s2s: s2s.cloned(),
            };
            match Ejabberd::launch(&spec) {
                Ok(server) => return server,
                Err(Launch::Retry(log)) => failures.push(log),
                Err(Launch::Failed(why)) => panic!("cannot start ejabberd for {domain}: {why}"),
            }
        }
        panic!("ejabberd did not start {ATTEMPTS} times (ports in use?):\n{failures:#?}");
    }
}

struct Spec {
    domain: String,
    options: Options,
    c2s_port: u16,
    dist_port: u16,
    s2s: Option<S2s>,
}

enum Launch {
    /// Worth another try with other ports.
    Retry(String),
    Failed(String),
}

/// A running private ejabberd. Killed (and its directory removed) on drop;
/// if the thread is panicking, the directory is kept and its path printed.
pub struct Ejabberd {
    dir: Option<tempfile::TempDir>,
    path: PathBuf,
    domain: String,
    c2s_port: u16,
    child: Option<Child>,
    /// The child's process group (its pid).
    group: Option<u32>,
}

impl core::fmt::Debug for Ejabberd {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("Ejabberd")
            .field("path", &self.path)
            .field("domain", &self.domain)
            .field("c2s_port", &self.c2s_port)
            .finish_non_exhaustive()
    }
}

fn yaml_string(text: &str) -> String {
    assert!(
        !text.contains(['"', '\\', '\n']),
        "unexpected characters in {text}"
    );
    format!("\"{text}\"")
}

fn random_hex(bytes: usize) -> String {
    let mut raw = vec![0u8; bytes];
    getrandom::fill(&mut raw).expect("OS RNG");
    hex::encode(raw)
}

impl Ejabberd {
    fn launch(spec: &Spec) -> Result<Self, Launch> {
        let failed = |e: String| Launch::Failed(e);
        let dir = tempfile::Builder::new()
            .prefix(&format!("esession-ejabberd-{}-", spec.domain))
            .tempdir()
            .map_err(|e| failed(e.to_string()))?;
        let path = dir.path().to_path_buf();
        let mut server = Self {
            dir: Some(dir),
            path: path.clone(),
            domain: spec.domain.clone(),
            c2s_port: spec.c2s_port,
            child: None,
            group: None,
        };
        for sub in ["etc", "certs", "spool", "logs"] {
            std::fs::create_dir_all(path.join(sub)).map_err(|e| failed(e.to_string()))?;
        }
        server.make_certs().map_err(failed)?;
        server.write_config(spec).map_err(failed)?;
        server.start(spec)?;
        Ok(server)
    }

    /// A private CA and a leaf certificate for the host (CA:FALSE, SAN =
    /// the domain) signed by it; ejabberd wants certificate, key and chain
    /// in one PEM file.
    fn make_certs(&self) -> Result<(), String> {
        let certs = self.path.join("certs");
        let cnf = certs.join("openssl.cnf");
        std::fs::write(
            &cnf,
            format!(
                "[req]\ndistinguished_name = dn\nprompt = no\n\
                 [dn]\nCN = {d}\n\
                 [ca]\nbasicConstraints = critical,CA:TRUE\n\
                 keyUsage = critical,keyCertSign,cRLSign\n\
                 subjectKeyIdentifier = hash\n\
                 [leaf]\nbasicConstraints = critical,CA:FALSE\n\
                 keyUsage = critical,digitalSignature,keyEncipherment\n\
                 extendedKeyUsage = serverAuth,clientAuth\n\
                 subjectAltName = DNS:{d}\n\
                 authorityKeyIdentifier = keyid\n",
                d = self.domain
            ),
        )
        .map_err(|e| e.to_string())?;
        let ec = [
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:prime256v1",
            "-nodes",
        ];
        run(
            Command::new("openssl")
                .args(["req", "-x509"])
                .args(ec)
                .args(["-days", "3650", "-subj"])
                .arg(format!("/CN=esession test CA for {}", self.domain))
                .args(["-config"])
                .arg(&cnf)
                .args(["-extensions", "ca", "-keyout"])
                .arg(certs.join("ca.key"))
                .arg("-out")
                .arg(self.ca_file()),
            "openssl req -x509 (CA)",
        )?;
        run(
            Command::new("openssl")
                .args(["req", "-new"])
                .args(ec)
                .arg("-config")
                .arg(&cnf)
                .arg("-keyout")
                .arg(certs.join("leaf.key"))
                .arg("-out")
                .arg(certs.join("leaf.csr")),
            "openssl req -new (leaf)",
        )?;
        run(
            Command::new("openssl")
                .args(["x509", "-req", "-days", "3650", "-in"])
                .arg(certs.join("leaf.csr"))
                .arg("-CA")
                .arg(self.ca_file())
                .arg("-CAkey")
                .arg(certs.join("ca.key"))
                .args(["-CAcreateserial", "-extfile"])
                .arg(&cnf)
                .args(["-extensions", "leaf", "-out"])
                .arg(self.leaf_file()),
            "openssl x509 -req (leaf)",
        )?;
        let mut pem = Vec::new();
        for part in [self.leaf_file(), certs.join("leaf.key"), self.ca_file()] {
            pem.extend(std::fs::read(&part).map_err(|e| format!("{}: {e}", part.display()))?);
        }
        std::fs::write(certs.join("server.pem"), pem).map_err(|e| e.to_string())
    }

    fn write_config(&self, spec: &Spec) -> Result<(), String> {
        let p = |rel: &str| self.path.join(rel).display().to_string();
        let etc = self.path.join("etc");
        // The CA bundle ejabberd trusts: ours, plus certificates of peers.
        let mut trusted = std::fs::read(self.ca_file()).map_err(|e| e.to_string())?;
        for extra in spec.s2s.iter().flat_map(|s| &s.trust) {
            trusted.extend(std::fs::read(extra).map_err(|e| format!("{}: {e}", extra.display()))?);
        }
        std::fs::write(self.path.join("certs/trusted.pem"), trusted).map_err(|e| e.to_string())?;

        let level = std::env::var("ESESSION_EJABBERD_LOG")
            .ok()
            .filter(|l| ["debug", "info", "warning"].contains(&l.as_str()))
            .unwrap_or_else(|| "info".to_owned());
        let mut yml = format!(
            "# Private ejabberd for esession tests (loopback only).\n\
             loglevel: {level}\n\
             log_rotate_count: 0\n\
             hosts: [{domain}]\n\
             certfiles: [{pem}]\n\
             ca_file: {ca}\n\
             auth_method: internal\n\
             auth_password_format: {format}\n\
             outgoing_s2s_families: [ipv4]\n\
             s2s_use_starttls: required\n\
             s2s_dns_timeout: 3\n\
             s2s_dns_retries: 1\n\
             acl:\n  local:\n    user_regexp: \"\"\n  loopback:\n    ip: [127.0.0.0/8]\n\
             access_rules:\n  local:\n    allow: local\n  c2s:\n    allow: all\n\
             api_permissions:\n  \"console commands\":\n    from: [ejabberd_ctl]\n    who: all\n    what: \"*\"\n\
             listen:\n\
             \x20 - port: {c2s}\n    ip: \"127.0.0.1\"\n    module: ejabberd_c2s\n\
             \x20   starttls_required: true\n    max_stanza_size: 262144\n    access: c2s\n",
            domain = yaml_string(&spec.domain),
            pem = yaml_string(&p("certs/server.pem")),
            ca = yaml_string(&p("certs/trusted.pem")),
            format = match spec.options.passwords {
                PasswordStorage::ScramSha1 => "scram",
                PasswordStorage::Plain => "plain",
            },
            c2s = spec.c2s_port,
        );
        if let Some(s2s) = &spec.s2s {
            yml.push_str(&format!(
                "\x20 - port: {}\n    ip: \"127.0.0.1\"\n    module: ejabberd_s2s_in\n    max_stanza_size: 524288\n",
                s2s.port
            ));
        }
        if !spec.options.disabled_mechanisms.is_empty() {
            let list: Vec<String> = spec
                .options
                .disabled_mechanisms
                .iter()
                .map(|m| yaml_string(m))
                .collect();
            yml.push_str(&format!("disable_sasl_mechanisms: [{}]\n", list.join(", ")));
        }
        yml.push_str(
            "modules:\n  mod_roster: {}\n  mod_disco: {}\n  mod_caps: {}\n  mod_ping: {}\n\
             \x20 mod_carboncopy: {}\n  mod_stream_mgmt: {}\n  mod_offline: {}\n\
             \x20 mod_mam:\n    default: always\n  mod_s2s_dialback: {}\n",
        );
        std::fs::write(etc.join("ejabberd.yml"), yml).map_err(|e| e.to_string())?;

        std::fs::write(
            etc.join("ejabberdctl.cfg"),
            format!(
                "ERLANG_NODE=esession-{node}@localhost\n\
                 ERL_DIST_PORT={dist}\n\
                 INET_DIST_INTERFACE=127.0.0.1\n\
                 ERL_OPTIONS=\"-setcookie {cookie}\"\n\
                 EJABBERD_CONFIG_PATH={config}\n\
                 EJABBERD_PID_PATH={pid}\n\
                 EJABBERD_BYPASS_WARNINGS=true\n",
                node = random_hex(6),
                dist = spec.dist_port,
                cookie = random_hex(16),
                config = p("etc/ejabberd.yml"),
                pid = p("ejabberd.pid"),
            ),
        )
        .map_err(|e| e.to_string())?;

        // The Erlang resolver: /etc/hosts-style entries, and DNS (inet_res,
        // used for SRV lookups) only from the test's responder.
        let mut inetrc = "{lookup, [\"file\", \"native\"]}.\n\
                          {host, {127,0,0,1}, [\"localhost\"]}.\n\
                          {resolv_conf, \"\"}.\n"
            .to_owned();
        if let Some(s2s) = &spec.s2s {
            let SocketAddr::V4(dns) = s2s.dns else {
                return Err("the DNS responder must listen on IPv4".to_owned());
            };
            let [a, b, c, d] = dns.ip().octets();
            inetrc.push_str(&format!(
                "{{nameserver, {{{a},{b},{c},{d}}}, {}}}.\n",
                dns.port()
            ));
        }
        std::fs::write(etc.join("inetrc"), inetrc).map_err(|e| e.to_string())?;

        // Debian's ejabberdctl, without its switch to the `ejabberd` user.
        let script =
            std::fs::read_to_string(EJABBERDCTL).map_err(|e| format!("{EJABBERDCTL}: {e}"))?;
        if !script.lines().any(|l| l == "INSTALLUSER=ejabberd") {
            return Err(format!(
                "{EJABBERDCTL} has no line INSTALLUSER=ejabberd: another ejabberd version?"
            ));
        }
        let script: Vec<&str> = script
            .lines()
            .map(|l| {
                if l == "INSTALLUSER=ejabberd" {
                    "INSTALLUSER="
                } else {
                    l
                }
            })
            .collect();
        let ctl = self.ctl_path();
        std::fs::write(&ctl, script.join("\n") + "\n").map_err(|e| e.to_string())?;
        run(
            Command::new("chmod").arg("755").arg(&ctl),
            "chmod ejabberdctl",
        )
    }

    fn ctl_path(&self) -> PathBuf {
        self.path.join("etc/ejabberdctl")
    }

    /// `ejabberdctl` with this instance's directories and environment.
    fn ctl(&self) -> Command {
        let mut command = Command::new(self.ctl_path());
        command
            .arg("--config-dir")
            .arg(self.path.join("etc"))
            .arg("--spool")
            .arg(self.path.join("spool"))
            .arg("--logs")
            .arg(self.path.join("logs"))
            .env("HOME", &self.path);
        command
    }

    fn start(&mut self, spec: &Spec) -> Result<(), Launch> {
        let stdout = std::fs::File::create(self.path.join("stdout.log"))
            .map_err(|e| Launch::Failed(e.to_string()))?;
        let stderr = stdout
            .try_clone()
            .map_err(|e| Launch::Failed(e.to_string()))?;
        // Its own process group: the script, erl and its helpers are
        // stopped together.
        let child = self
            .ctl()
            .arg("foreground")
            .stdin(Stdio::null())
            .stdout(stdout)
            .stderr(stderr)
            .process_group(0)
            .spawn()
            .map_err(|e| Launch::Failed(format!("cannot run ejabberdctl: {e}")))?;
        self.group = Some(child.id());
        self.child = Some(child);
        let mut wanted = vec![
            "is started in the node".to_owned(),
            format!(
                "Start accepting TCP connections at 127.0.0.1:{} for ejabberd_c2s",
                spec.c2s_port
            ),
        ];
        if let Some(s2s) = &spec.s2s {
            wanted.push(format!(
                "Start accepting TCP connections at 127.0.0.1:{} for ejabberd_s2s_in",
                s2s.port
            ));
        }
        let deadline = Instant::now() + READY_TIMEOUT;
        loop {
            let log = self.log();
            if log.contains("eaddrinuse") {
                self.kill();
                return Err(Launch::Retry(log));
            }
            if wanted.iter().all(|w| log.contains(w.as_str())) {
                return Ok(());
            }
            let exited = self
                .child
                .as_mut()
                .and_then(|c| c.try_wait().ok().flatten());
            if let Some(status) = exited {
                self.kill();
                // E.g. the Erlang distribution port was taken meanwhile.
                return Err(Launch::Retry(format!(
                    "ejabberd exited with {status} before it was ready\nlog:\n{log}\nstdout:\n{}",
                    std::fs::read_to_string(self.path.join("stdout.log")).unwrap_or_default()
                )));
            }
            if Instant::now() > deadline {
                self.kill();
                return Err(Launch::Failed(format!(
                    "ejabberd not ready within {READY_TIMEOUT:?}\nlog:\n{log}\nstdout:\n{}",
                    std::fs::read_to_string(self.path.join("stdout.log")).unwrap_or_default()
                )));
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Creates `user@domain` with `ejabberdctl register` (about 1.5 s: each
    /// call starts an Erlang node).
    pub fn register(&self, user: &str, password: &str) {
        self.register_all(&[(user, password)]);
    }

    /// Creates several accounts at once (the `ejabberdctl` calls run in parallel).
    pub fn register_all(&self, accounts: &[(&str, &str)]) {
        let children: Vec<(String, std::io::Result<std::process::Child>)> = accounts
            .iter()
            .map(|(user, password)| {
                let child = self
                    .ctl()
                    .args(["register", user, &self.domain, password])
                    .stdin(Stdio::null())
                    .stdout(Stdio::piped())
                    .stderr(Stdio::piped())
                    .spawn();
                ((*user).to_owned(), child)
            })
            .collect();
        for (user, child) in children {
            let output = child
                .and_then(Child::wait_with_output)
                .unwrap_or_else(|e| panic!("ejabberdctl register {user}: {e}"));
            let text = String::from_utf8_lossy(&output.stdout);
            assert!(
                output.status.success() && text.contains("successfully registered"),
                "ejabberdctl register {user} {} failed ({}): {text}{}",
                self.domain,
                output.status,
                String::from_utf8_lossy(&output.stderr)
            );
        }
    }

    /// The virtual host.
    pub fn domain(&self) -> &str {
        &self.domain
    }

    /// The c2s port on 127.0.0.1 (STARTTLS required).
    pub fn c2s_port(&self) -> u16 {
        self.c2s_port
    }

    /// The server's directory (config, certificates, spool, logs).
    pub fn dir(&self) -> &Path {
        &self.path
    }

    /// The private CA's certificate: the CA file clients must trust.
    pub fn ca_file(&self) -> PathBuf {
        self.path.join("certs/ca.crt")
    }

    /// The host's own (leaf) certificate.
    pub fn leaf_file(&self) -> PathBuf {
        self.path.join("certs/leaf.crt")
    }

    /// ejabberd's log.
    pub fn log_path(&self) -> PathBuf {
        self.path.join("logs/ejabberd.log")
    }

    /// The log so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.log_path()).unwrap_or_default()
    }

    /// Every file under the server's directory with its contents (Mnesia
    /// spool with accounts, offline messages and the MAM archive; logs;
    /// config; certificates).
    pub fn all_files(&self) -> Vec<(PathBuf, Vec<u8>)> {
        crate::all_files(&self.path)
    }

    /// Waits until the log contains every one of `needles` (ejabberd
    /// writes its log file with a delay); returns the log. Fails after 10 s.
    pub fn wait_for_log(&self, needles: &[&str]) -> String {
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let log = self.log();
            if needles.iter().all(|n| log.contains(n)) {
                return log;
            }
            assert!(
                Instant::now() < deadline,
                "ejabberd's log has not shown {needles:?} within 10 s:\n{log}"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Login options for `user` (with a resource: `user@domain/resource`):
    /// STARTTLS on the c2s port, trusting only this server's private CA.
    pub fn connect_options(&self, user: &str, resource: &str, password: &str) -> ConnectOptions {
        ConnectOptions {
            jid: format!("{user}@{}/{resource}", self.domain),
            password: password.to_owned(),
            host: Some("127.0.0.1".to_owned()),
            port: Some(self.c2s_port),
            security: TransportSecurity::StartTls {
                ca_file: Some(self.ca_file()),
            },
            dns_server: None,
        }
    }

    fn signal_group(&self, signal: &str) -> bool {
        // The shell's builtin kill: no dependency on procps. A negative id
        // is the process group the fixture created.
        self.group.is_some_and(|group| {
            Command::new("sh")
                .arg("-c")
                .arg(format!("kill -{signal} -{group} 2>/dev/null"))
                .status()
                .is_ok_and(|s| s.success())
        })
    }

    /// Stops the server gracefully (SIGTERM to its process group: Erlang
    /// then runs `init:stop()`), SIGKILL after 10 s.
    pub fn stop(&mut self) {
        let running = self
            .child
            .as_mut()
            .is_some_and(|c| matches!(c.try_wait(), Ok(None)));
        if running {
            self.signal_group("TERM");
            let deadline = Instant::now() + Duration::from_secs(10);
            while self.group_alive() && Instant::now() < deadline {
                std::thread::sleep(Duration::from_millis(20));
            }
        }
        self.kill();
    }

    /// Whether any process of the server's group is still there (the
    /// script itself is reaped on the way, so that it is not counted as a zombie).
    fn group_alive(&mut self) -> bool {
        if let Some(child) = self.child.as_mut() {
            let _ = child.try_wait();
        }
        self.signal_group("0")
    }

    fn kill(&mut self) {
        self.signal_group("KILL");
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
        self.group = None;
    }
}

fn run(command: &mut Command, what: &str) -> Result<(), String> {
    let output = command
        .stdin(Stdio::null())
        .output()
        .map_err(|e| format!("{what}: {e}"))?;
    if output.status.success() {
        Ok(())
    } else {
        Err(format!(
            "{what} failed ({}): {}{}",
            output.status,
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        ))
    }
}

impl Drop for Ejabberd {
    fn drop(&mut self) {
        self.kill();
        if (std::thread::panicking() || std::env::var_os("ESESSION_KEEP_EJABBERD").is_some())
            && let Some(dir) = self.dir.take()
        {
            let kept = dir.keep();
            let _ = writeln!(
                std::io::stderr(),
                "ejabberd directory kept for inspection: {} (log: {})",
                kept.display(),
                kept.join("logs/ejabberd.log").display()
            );
        }
    }
}
