//! Private Prosody servers for tests: Debian's `prosody` package, a config in
//! a temporary directory, loopback only, free ports, accounts made with
//! `prosodyctl`, started as a child process and stopped on drop, readiness read
//! from its log (see `/work/shared/notes/prosody.md`, or the summary below).
//!
//! Each [`Prosody`] owns one directory:
//!
//! ```text
//! prosody.cfg.lua   the config (absolute paths, run_as_root = true)
//! certs/            a self-signed P-256 certificate for the virtual host (also the
//!                   clients' CA file: TransportSecurity::StartTls { ca_file })
//! plugins/          test-only Lua plugins (archive everything, static s2s routes)
//! data/             internal (file) storage: accounts, MAM archive, offline messages
//! prosody.log       the log the readiness check reads
//! ```
//!
//! Pitfalls handled here (from the notes): a port already in use does not stop
//! Prosody, so readiness is the log line `Activated service 'c2s' on
//! [127.0.0.1]:PORT` and `Failed to open server port` is a failure (the fixture
//! retries with new ports); s2s is auto-loaded, so it is disabled unless
//! federating; as root, `run_as_root = true` is required.

use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use esession_xmpp::{ConnectOptions, TransportSecurity};

/// How long a server may take to log that it is listening.
const READY_TIMEOUT: Duration = Duration::from_secs(15);

/// Start attempts before giving up (a new set of free ports each time).
const ATTEMPTS: usize = 4;

/// What the server archives (XEP-0313, mod_mam).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Archive {
    /// No mod_mam (fastest: Prosody's archive writes dominate its CPU time).
    Off,
    /// mod_mam with Prosody's own rules: only messages with a body, subject,
    /// receipt request, ... (body-less encrypted XEP-0200 stanzas are not archived).
    Mam,
    /// mod_mam plus a test-only plugin that archives *every* chat and normal
    /// message, including negotiation and encrypted stanzas: the strictest
    /// setting for showing that the server holds no plaintext.
    MamEverything,
    /// [`Archive::MamEverything`] on a server whose archive preferences
    /// cannot be changed: every preference change is answered `not-allowed`
    /// (issue 14: a server we cannot keep a session out of).
    MamLocked,
    /// No XEP-0313, but XEP-0136 automatic archiving as a test-only plugin
    /// models it (no server we can install has XEP-0136 any more): the server
    /// advertises `urn:xmpp:archive:auto` and lets a user turn automatic
    /// archiving off for the stream (logged, so a test can see it).
    Xep0136,
    /// [`Archive::Xep0136`] with compulsory archiving: turning it off is
    /// answered `not-allowed` (ARC-10).
    Xep0136Compulsory,
}

/// The marker a plaintext-leak check looks for: "is it anywhere in these bytes".
pub fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    !needle.is_empty() && haystack.windows(needle.len()).any(|w| w == needle)
}

/// When a test certificate made by [`self_signed_certificate`] is valid.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Validity {
    /// From now for ten years.
    Current,
    /// All of 2020 only: expired.
    Expired,
}

/// Makes a self-signed P-256 server certificate for `name` (CN and SAN, not a
/// CA, like the fixture's own) with `openssl` in `dir`, which must exist and
/// be otherwise unused by this function's other calls. Returns the
/// certificate (PEM, also usable as a CA file that trusts exactly it) and its
/// key. For certificate-verification tests: a CA file that does not match the
/// server, a certificate for another name, an expired one.
pub fn self_signed_certificate(dir: &Path, name: &str, validity: Validity) -> (PathBuf, PathBuf) {
    assert!(
        name.chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '.' || c == '-'),
        "unexpected certificate name {name:?}"
    );
    let cert = dir.join(format!("{name}.crt"));
    let key = dir.join(format!("{name}.key"));
    let cnf = dir.join(format!("{name}.cnf"));
    let db = dir.join(format!("{name}.db"));
    std::fs::create_dir_all(&db).expect("cannot create the openssl ca database");
    std::fs::write(db.join("index.txt"), "").expect("cannot write the openssl ca index");
    std::fs::write(
        &cnf,
        format!(
            "[ca]\ndefault_ca = test\n\
             [test]\ndatabase = {db}/index.txt\nnew_certs_dir = {db}\nserial = {db}/serial\nrand_serial = yes\n\
             default_md = sha256\npolicy = any\nemail_in_dn = no\nunique_subject = no\n\
             copy_extensions = none\nx509_extensions = ext\n\
             [any]\ncommonName = supplied\n\
             [req]\ndistinguished_name = dn\nx509_extensions = ext\nprompt = no\n\
             [dn]\nCN = {name}\n\
             [ext]\nbasicConstraints = critical,CA:FALSE\n\
             keyUsage = critical,digitalSignature,keyEncipherment\n\
             extendedKeyUsage = serverAuth,clientAuth\n\
             subjectAltName = DNS:{name}\n",
            db = db.display(),
        ),
    )
    .expect("cannot write the openssl config");
    let new_key = [
        "-newkey",
        "ec",
        "-pkeyopt",
        "ec_paramgen_curve:prime256v1",
        "-nodes",
    ];
    match validity {
        Validity::Current => run(
            Command::new("openssl")
                .args(["req", "-x509"])
                .args(new_key)
                .args(["-days", "3650", "-config"])
                .arg(&cnf)
                .arg("-keyout")
                .arg(&key)
                .arg("-out")
                .arg(&cert),
            "openssl req -x509",
        ),
        // `openssl req -x509` cannot date a certificate in the past;
        // `openssl ca -selfsign` can.
        Validity::Expired => {
            let csr = dir.join(format!("{name}.csr"));
            run(
                Command::new("openssl")
                    .args(["req", "-new"])
                    .args(new_key)
                    .arg("-config")
                    .arg(&cnf)
                    .arg("-keyout")
                    .arg(&key)
                    .arg("-out")
                    .arg(&csr),
                "openssl req -new",
            )
            .and_then(|()| {
                run(
                    Command::new("openssl")
                        .args(["ca", "-batch", "-notext", "-selfsign", "-config"])
                        .arg(&cnf)
                        .arg("-keyfile")
                        .arg(&key)
                        .arg("-in")
                        .arg(&csr)
                        .args(["-startdate", "20200101000000Z"])
                        .args(["-enddate", "20210101000000Z"])
                        .arg("-out")
                        .arg(&cert),
                    "openssl ca -selfsign",
                )
            })
        }
    }
    .unwrap_or_else(|e| panic!("{e}"));
    (cert, key)
}

/// Proof that Prosody is installed; see [`crate::prosody_or_skip`].
#[derive(Clone, Copy, Debug)]
pub struct Installed(());

/// Whether `prosody`, `prosodyctl` and `openssl` are on the PATH.
pub fn installed() -> Option<Installed> {
    let found = |name: &str| {
        std::env::var_os("PATH").is_some_and(|path| {
            std::env::split_paths(&path)
                .any(|dir| std::fs::metadata(dir.join(name)).is_ok_and(|m| m.is_file()))
        })
    };
    (found("prosody") && found("prosodyctl") && found("openssl")).then_some(Installed(()))
}

impl Installed {
    /// One server for `domain` (e.g. `localhost`), c2s only.
    pub fn server(&self, domain: &str, archive: Archive) -> Prosody {
        let mut failures = Vec::new();
        for _ in 0..ATTEMPTS {
            let spec = Spec {
                domain: domain.to_owned(),
                archive,
                c2s_port: free_port(),
                s2s: None,
            };
            match Prosody::launch(&spec) {
                Ok(server) => return server,
                Err(Launch::PortInUse(log)) => failures.push(log),
                Err(Launch::Failed(why)) => panic!("cannot start Prosody for {domain}: {why}"),
            }
        }
        panic!("Prosody could not bind free ports {ATTEMPTS} times:\n{failures:#?}");
    }

    /// One server for `domain` with s2s on `s2s_port` (127.0.0.1), routing
    /// each of `routes` (remote domain, s2s port on 127.0.0.1) there; other
    /// domains are found through DNS as usual. For federating with another
    /// kind of server.
    pub fn federated_server(
        &self,
        domain: &str,
        archive: Archive,
        s2s_port: u16,
        routes: Vec<(String, u16)>,
    ) -> Prosody {
        let mut failures = Vec::new();
        for _ in 0..ATTEMPTS {
            let spec = Spec {
                domain: domain.to_owned(),
                archive,
                c2s_port: free_port(),
                s2s: Some(S2s {
                    port: s2s_port,
                    routes: routes.clone(),
                }),
            };
            match Prosody::launch(&spec) {
                Ok(server) => return server,
                Err(Launch::PortInUse(log)) => failures.push(log),
                Err(Launch::Failed(why)) => panic!("cannot start Prosody for {domain}: {why}"),
            }
        }
        panic!("Prosody could not bind free ports {ATTEMPTS} times:\n{failures:#?}");
    }

    /// Two federated servers, `a.test` and `b.test`, on 127.0.0.1 with their
    /// own c2s and s2s ports. Prosody finds s2s peers only through DNS, so a
    /// test-only plugin routes each domain to the other server's port, and the
    /// servers authenticate each other with dialback over TLS (self-signed certs).
    pub fn federation(&self, archive: Archive) -> (Prosody, Prosody) {
        let mut failures = Vec::new();
        for _ in 0..ATTEMPTS {
            let (a_s2s, b_s2s) = (free_port(), free_port());
            let spec = |domain: &str, own: u16, peer: &str, peer_port: u16| Spec {
                domain: domain.to_owned(),
                archive,
                c2s_port: free_port(),
                s2s: Some(S2s {
                    port: own,
                    routes: vec![(peer.to_owned(), peer_port)],
                }),
            };
            let a = match Prosody::launch(&spec("a.test", a_s2s, "b.test", b_s2s)) {
                Ok(a) => a,
                Err(Launch::PortInUse(log)) => {
                    failures.push(log);
                    continue;
                }
                Err(Launch::Failed(why)) => panic!("cannot start Prosody for a.test: {why}"),
            };
            match Prosody::launch(&spec("b.test", b_s2s, "a.test", a_s2s)) {
                Ok(b) => return (a, b),
                Err(Launch::PortInUse(log)) => failures.push(log),
                Err(Launch::Failed(why)) => panic!("cannot start Prosody for b.test: {why}"),
            }
        }
        panic!("Prosody could not bind free ports {ATTEMPTS} times:\n{failures:#?}");
    }
}

struct S2s {
    port: u16,
    /// Remote domain → its s2s port on 127.0.0.1.
    routes: Vec<(String, u16)>,
}

struct Spec {
    domain: String,
    archive: Archive,
    c2s_port: u16,
    s2s: Option<S2s>,
}

enum Launch {
    PortInUse(String),
    Failed(String),
}

/// A running private Prosody. Killed (and its directory removed) on drop; if
/// the thread is panicking, the directory is kept and its path printed.
pub struct Prosody {
    dir: Option<tempfile::TempDir>,
    path: PathBuf,
    domain: String,
    c2s_port: u16,
    child: Option<Child>,
}

impl core::fmt::Debug for Prosody {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("Prosody")
            .field("path", &self.path)
            .field("domain", &self.domain)
            .field("c2s_port", &self.c2s_port)
            .finish_non_exhaustive()
    }
}

use crate::free_port;

fn lua_string(path: &Path) -> String {
    let text = path.display().to_string();
    assert!(
        !text.contains(['"', '\\', '\n']),
        "unexpected characters in {text}"
    );
    format!("\"{text}\"")
}

/// Prosody's file storage escapes host names: `a.test` is `a%2etest`.
fn storage_host(domain: &str) -> String {
    domain
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() {
                c.to_string()
            } else {
                format!("%{:02x}", u32::from(c))
            }
        })
        .collect()
}

const ARCHIVE_EVERYTHING: &str = r#"-- mod_archive_everything: TEST-ONLY. Prosody 0.12's mod_mam archives only
-- messages with a body, subject, receipt, ... (see should_store in mod_mam.lua),
-- so body-less XEP-0200 stanzas would never reach the archive. This hook runs
-- before mod_mam's own rule and archives every chat and normal message.
-- A XEP-0334 hint (no-store, no-permanent-store) still wins: the message is
-- left to mod_mam's own rule, which does not archive it.
module:hook("archive-should-store", function (event)
	local stanza = event.stanza;
	if stanza:get_child("no-store", "urn:xmpp:hints")
	or stanza:get_child("no-permanent-store", "urn:xmpp:hints") then
		return;
	end
	local st_type = stanza.attr.type or "normal";
	if st_type == "chat" or st_type == "normal" then
		event.reason = "archive_everything";
		return true;
	end
end, 10);
"#;

const MAM_PREFS_LOCKED: &str = r#"-- mod_mam_prefs_locked: TEST-ONLY. A server that archives everything and
-- lets no user change that: reading the XEP-0313 preferences works, every
-- change is answered not-allowed (runs before mod_mam's own handler).
local st = require "util.stanza";
module:hook("iq/self/urn:xmpp:mam:2:prefs", function (event)
	if event.stanza.attr.type ~= "set" then
		return;
	end
	event.origin.send(st.error_reply(event.stanza, "cancel", "not-allowed",
		"Archiving is compulsory on this server"));
	return true;
end, 10);
"#;

const ARCHIVE_XEP0136: &str = r#"-- mod_archive_xep0136: TEST-ONLY. The part of XEP-0136 Message Archiving a
-- client meets before an off-the-record session: the server advertises
-- automatic archiving and answers a preference change of <auto/> (ARC-07/10).
-- Nothing is archived; each request is logged.
local st = require "util.stanza";
local compulsory = module:get_option_boolean("archive_xep0136_compulsory", false);
module:add_feature("urn:xmpp:archive:auto");
module:add_feature("urn:xmpp:archive:pref");
module:hook("iq/self/urn:xmpp:archive:pref", function (event)
	local stanza = event.stanza;
	if stanza.attr.type ~= "set" then
		return;
	end
	local auto = stanza.tags[1]:get_child("auto");
	local save = auto and auto.attr.save or "none";
	local scope = auto and auto.attr.scope or "none";
	module:log("info", "XEP-0136 pref set by %s: auto save=%s scope=%s",
		event.origin.username, save, scope);
	if compulsory and save == "false" then
		event.origin.send(st.error_reply(stanza, "cancel", "not-allowed",
			"Archiving is compulsory on this server"));
	else
		event.origin.send(st.reply(stanza));
	end
	return true;
end, 10);
"#;

const S2S_STATIC_ROUTE: &str = r#"-- mod_s2s_static_route: TEST-ONLY helper for Prosody 0.12.
-- Routes outgoing s2s connections for selected remote domains to a fixed
-- IP:port, bypassing DNS (SRV/A lookups). Lets two Prosody instances on
-- 127.0.0.1 federate on arbitrary ports without /etc/hosts or a DNS server.
--   s2s_static_routes = { ["b.test"] = { "127.0.0.1", 25269 } }
module:set_global();

local service = require "net.resolvers.service";
local basic = require "net.resolvers.basic";
local manual = require "net.resolvers.manual";

local routes = module:get_option("s2s_static_routes", {});

-- net.resolvers.service is a shared Lua module table and mod_s2s looks up
-- service.new at call time, so replacing the field redirects mod_s2s.
if not service._static_route_orig_new then
	service._static_route_orig_new = service.new;
end
local orig_new = service._static_route_orig_new;

service.new = function (hostname, srv_name, conn_type, extra)
	local route = routes[hostname];
	if route then
		if srv_name == "xmpp-server" then
			module:log("debug", "Static s2s route for %s -> %s:%d", hostname, route[1], route[2]);
			return basic.new(route[1], route[2], conn_type, extra);
		elseif srv_name == "xmpps-server" then
			-- no direct-TLS s2s target: empty resolver, mod_s2s falls through to STARTTLS
			return manual.new({}, conn_type, extra);
		end
	end
	return orig_new(hostname, srv_name, conn_type, extra);
end

function module.unload()
	service.new = orig_new;
end
"#;

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

impl Prosody {
    fn launch(spec: &Spec) -> Result<Self, Launch> {
        let failed = |e: String| Launch::Failed(e);
        let dir = tempfile::Builder::new()
            .prefix(&format!("esession-prosody-{}-", spec.domain))
            .tempdir()
            .map_err(|e| failed(e.to_string()))?;
        let path = dir.path().to_path_buf();
        let mut server = Self {
            dir: Some(dir),
            path: path.clone(),
            domain: spec.domain.clone(),
            c2s_port: spec.c2s_port,
            child: None,
        };
        for sub in ["data", "certs", "plugins"] {
            std::fs::create_dir_all(path.join(sub)).map_err(|e| failed(e.to_string()))?;
        }
        server.make_cert().map_err(failed)?;
        std::fs::write(
            path.join("plugins/mod_archive_everything.lua"),
            ARCHIVE_EVERYTHING,
        )
        .map_err(|e| failed(e.to_string()))?;
        std::fs::write(
            path.join("plugins/mod_archive_xep0136.lua"),
            ARCHIVE_XEP0136,
        )
        .map_err(|e| failed(e.to_string()))?;
        std::fs::write(
            path.join("plugins/mod_mam_prefs_locked.lua"),
            MAM_PREFS_LOCKED,
        )
        .map_err(|e| failed(e.to_string()))?;
        std::fs::write(
            path.join("plugins/mod_s2s_static_route.lua"),
            S2S_STATIC_ROUTE,
        )
        .map_err(|e| failed(e.to_string()))?;
        std::fs::write(server.config_path(), server.config_text(spec))
            .map_err(|e| failed(e.to_string()))?;
        server.start(spec)?;
        Ok(server)
    }

    fn config_text(&self, spec: &Spec) -> String {
        let p = |rel: &str| lua_string(&self.path.join(rel));
        // XEP-0198 as in Prosody's default configuration: a client whose
        // connection drops resumes its stream (issue 10). Its session
        // hibernates 4 s here (600 s by default: a killed client looks
        // online that long, and only receipts tell the sender). PEP (XEP-0163),
        // on in Prosody's default configuration too, holds XEP-0189 keys (issue 13).
        // Message Carbons (XEP-0280), on in Prosody's default configuration as well.
        // Nagle's algorithm off (`network_settings`, not Prosody's default):
        // with XEP-0198 acks, the server's small second write waited for the
        // client's delayed ACK, adding 44 ms to every round trip the tests
        // and benches measure (issue 16; our clients set TCP_NODELAY).
        let mut modules = vec![
            "roster", "saslauth", "tls", "disco", "ping", "smacks", "pep", "carbons",
        ];
        match spec.archive {
            Archive::Off => {}
            Archive::Mam => modules.push("mam"),
            Archive::MamEverything => modules.extend(["mam", "archive_everything"]),
            Archive::MamLocked => {
                modules.extend(["mam", "archive_everything", "mam_prefs_locked"]);
            }
            Archive::Xep0136 | Archive::Xep0136Compulsory => modules.push("archive_xep0136"),
        }
        let mut cfg = format!(
            "-- Private Prosody instance for esession integration tests (generated)\n\
             run_as_root = true\n\
             pidfile = {pid}\n\
             data_path = {data}\n\
             log = {{ {{ levels = {{ min = \"{level}\" }}, to = \"file\", filename = {log} }} }}\n\
             interfaces = {{ \"127.0.0.1\" }}\n\
             local_interfaces = {{ \"127.0.0.1\" }}\n\
             c2s_ports = {{ {c2s} }}\n\
             c2s_direct_tls_ports = {{ }}\n\
             legacy_ssl_ports = {{ }}\n\
             plugin_paths = {{ {plugins} }}\n\
             authentication = \"internal_hashed\"\n\
             storage = \"internal\"\n\
             c2s_require_encryption = false\n\
             allow_unencrypted_plain_auth = true\n\
             archive_expires_after = \"1d\"\n\
             smacks_hibernation_time = 4\n\
             network_settings = {{ nagle = false }}\n\
             default_archive_policy = true\n\
             max_archive_query_results = 1000\n",
            pid = p("prosody.pid"),
            data = p("data"),
            log = p("prosody.log"),
            // ESESSION_PROSODY_LOG=debug logs every stanza (for diagnosing a failed test).
            level = std::env::var("ESESSION_PROSODY_LOG")
                .ok()
                .filter(|l| ["debug", "info", "warn"].contains(&l.as_str()))
                .unwrap_or_else(|| "info".to_owned()),
            c2s = spec.c2s_port,
            plugins = p("plugins"),
        );
        if spec.archive == Archive::Xep0136Compulsory {
            cfg.push_str("archive_xep0136_compulsory = true\n");
        }
        match &spec.s2s {
            None => cfg.push_str("modules_disabled = { \"s2s\" }\n"),
            Some(s2s) => {
                modules.extend(["dialback", "s2s_static_route"]);
                let routes: Vec<String> = s2s
                    .routes
                    .iter()
                    .map(|(domain, port)| format!("[\"{domain}\"] = {{ \"127.0.0.1\", {port} }}"))
                    .collect();
                cfg.push_str(&format!(
                    "s2s_ports = {{ {} }}\n\
                     s2s_interfaces = {{ \"127.0.0.1\" }}\n\
                     s2s_require_encryption = true\n\
                     s2s_secure_auth = false\n\
                     s2s_static_routes = {{ {} }}\n",
                    s2s.port,
                    routes.join(", ")
                ));
            }
        }
        let modules: Vec<String> = modules.iter().map(|m| format!("\"{m}\"")).collect();
        cfg.push_str(&format!(
            "modules_enabled = {{ {} }}\n\n",
            modules.join("; ")
        ));
        cfg.push_str(&format!(
            "VirtualHost \"{domain}\"\n  ssl = {{ key = {key}; certificate = {cert}; }}\n",
            domain = spec.domain,
            key = lua_string(&self.key_file()),
            cert = lua_string(&self.ca_file()),
        ));
        cfg
    }

    /// A self-signed P-256 certificate for the host: CN and SAN = the domain,
    /// not a CA (rustls refuses a CA certificate as a server's end-entity
    /// certificate), trusted by the clients directly as their CA file.
    fn make_cert(&self) -> Result<(), String> {
        let cnf = self.path.join("certs/openssl.cnf");
        std::fs::write(
            &cnf,
            format!(
                "[req]\ndistinguished_name = dn\nx509_extensions = ext\nprompt = no\n\
                 [dn]\nCN = {d}\n\
                 [ext]\nbasicConstraints = critical,CA:FALSE\n\
                 keyUsage = critical,digitalSignature,keyEncipherment\n\
                 extendedKeyUsage = serverAuth,clientAuth\n\
                 subjectAltName = DNS:{d}\n",
                d = self.domain
            ),
        )
        .map_err(|e| e.to_string())?;
        run(
            Command::new("openssl")
                .args(["req", "-x509", "-newkey", "ec", "-pkeyopt"])
                .arg("ec_paramgen_curve:prime256v1")
                .args(["-nodes", "-days", "3650", "-config"])
                .arg(&cnf)
                .arg("-keyout")
                .arg(self.key_file())
                .arg("-out")
                .arg(self.ca_file()),
            "openssl req -x509",
        )
    }

    /// Runs the prosody process on this instance's configuration.
    fn spawn(&mut self) -> Result<(), Launch> {
        let stdout = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.path.join("stdout.log"))
            .map_err(|e| Launch::Failed(e.to_string()))?;
        let stderr = stdout
            .try_clone()
            .map_err(|e| Launch::Failed(e.to_string()))?;
        let child = Command::new("prosody")
            .arg("--config")
            .arg(self.config_path())
            .arg("-F")
            .stdin(Stdio::null())
            .stdout(stdout)
            .stderr(stderr)
            .spawn()
            .map_err(|e| Launch::Failed(format!("cannot run prosody: {e}")))?;
        self.child = Some(child);
        Ok(())
    }

    /// Restarts the server as an administrator would (SIGTERM, then start
    /// again on the same ports, accounts and data): every client connection
    /// drops, and clients must log in again. Panics if it does not come back
    /// within the start-up timeout.
    pub fn restart(&mut self) {
        self.stop();
        let ready = format!("Activated service 'c2s' on [127.0.0.1]:{}", self.c2s_port);
        let count = |log: &str| log.matches(ready.as_str()).count();
        let before = count(&self.log());
        if let Err(Launch::Failed(e) | Launch::PortInUse(e)) = self.spawn() {
            panic!("prosody restart: {e}");
        }
        let deadline = Instant::now() + READY_TIMEOUT;
        while count(&self.log()) <= before {
            assert!(
                Instant::now() < deadline,
                "prosody not back within {READY_TIMEOUT:?}:\n{}",
                self.log()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    fn start(&mut self, spec: &Spec) -> Result<(), Launch> {
        self.spawn()?;
        let mut wanted = vec![format!(
            "Activated service 'c2s' on [127.0.0.1]:{}",
            spec.c2s_port
        )];
        if let Some(s2s) = &spec.s2s {
            wanted.push(format!(
                "Activated service 's2s' on [127.0.0.1]:{}",
                s2s.port
            ));
        }
        let deadline = Instant::now() + READY_TIMEOUT;
        loop {
            let log = std::fs::read_to_string(self.log_path()).unwrap_or_default();
            if log.contains("Failed to open server port") {
                self.kill();
                return Err(Launch::PortInUse(log));
            }
            if wanted.iter().all(|w| log.contains(w.as_str())) {
                return Ok(());
            }
            let exited = self
                .child
                .as_mut()
                .and_then(|c| c.try_wait().ok().flatten());
            if let Some(status) = exited {
                return Err(Launch::Failed(format!(
                    "prosody exited with {status} before it was ready\nlog:\n{log}\nstdout:\n{}",
                    std::fs::read_to_string(self.path.join("stdout.log")).unwrap_or_default()
                )));
            }
            if Instant::now() > deadline {
                self.kill();
                return Err(Launch::Failed(format!(
                    "prosody not ready within {READY_TIMEOUT:?}\nlog:\n{log}"
                )));
            }
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    /// Creates (or resets the password of) `user@domain` with `prosodyctl register`.
    pub fn register(&self, user: &str, password: &str) {
        run(
            Command::new("prosodyctl")
                .arg("--config")
                .arg(self.config_path())
                .args(["register", user, &self.domain, password]),
            &format!("prosodyctl register {user} {}", self.domain),
        )
        .unwrap_or_else(|e| panic!("{e}"));
    }

    /// Makes `a` and `b` (local users) mutual contacts: each in the other's
    /// roster with subscription `both`, as after an accepted subscription
    /// request. Written to Prosody's storage; call before either logs in.
    pub fn befriend(&self, a: &str, b: &str) {
        self.add_contact(a, &format!("{b}@{}", self.domain));
        self.add_contact(b, &format!("{a}@{}", self.domain));
    }

    /// Puts `contact` (any bare JID, on this server or another) in `user`'s roster with
    /// subscription `both`, as [`Self::befriend`] does for two local users: for
    /// federation tests, each server gets its own user's half.
    pub fn add_contact(&self, user: &str, contact: &str) {
        let dir = self
            .data_dir()
            .join(self.domain.replace('.', "%2e"))
            .join("roster");
        std::fs::create_dir_all(&dir).unwrap();
        {
            let path = dir.join(format!("{user}.dat"));
            let mut entries = std::fs::read_to_string(&path)
                .ok()
                .and_then(|t| {
                    t.strip_prefix("return {\n")
                        .and_then(|t| t.strip_suffix("};\n"))
                        .map(|body| {
                            body.lines()
                                .filter(|l| !l.contains("[false]"))
                                .map(|l| format!("{l}\n"))
                                .collect::<String>()
                        })
                })
                .unwrap_or_default();
            entries.push_str(&format!(
                "\t[\"{contact}\"] = {{ [\"subscription\"] = \"both\"; [\"groups\"] = {{}}; }};\n"
            ));
            std::fs::write(
                &path,
                format!(
                    "return {{\n\t[false] = {{ [\"version\"] = 1; [\"pending\"] = {{}}; }};\n{entries}}};\n"
                ),
            )
            .unwrap();
        }
    }

    /// The virtual host.
    pub fn domain(&self) -> &str {
        &self.domain
    }

    /// The c2s port on 127.0.0.1 (STARTTLS offered, plaintext allowed).
    pub fn c2s_port(&self) -> u16 {
        self.c2s_port
    }

    /// The server's directory (config, certs, data, log).
    pub fn dir(&self) -> &Path {
        &self.path
    }

    /// The file storage directory.
    pub fn data_dir(&self) -> PathBuf {
        self.path.join("data")
    }

    /// The host's certificate, which is also the CA file clients must trust.
    pub fn ca_file(&self) -> PathBuf {
        self.path.join(format!("certs/{}.crt", self.domain))
    }

    fn key_file(&self) -> PathBuf {
        self.path.join(format!("certs/{}.key", self.domain))
    }

    /// Makes the server present `cert` (PEM) with `key` from now on: copies
    /// them over its own certificate and key (so [`Self::ca_file`] is then
    /// `cert`), has Prosody reload them (SIGHUP) and waits until its log says
    /// so. For certificate-verification tests.
    pub fn replace_certificate(&self, cert: &Path, key: &Path) {
        let reloaded = || self.log().matches("Certificates reloaded").count();
        let before = reloaded();
        std::fs::copy(cert, self.ca_file()).expect("cannot replace the certificate");
        std::fs::copy(key, self.key_file()).expect("cannot replace the key");
        let pid = self.pid().expect("Prosody is not running");
        // The shell's builtin kill: no dependency on procps.
        run(
            Command::new("sh").arg("-c").arg(format!("kill -HUP {pid}")),
            "kill -HUP prosody",
        )
        .unwrap_or_else(|e| panic!("{e}"));
        if std::env::var("ESESSION_PROSODY_LOG").is_ok_and(|l| l == "warn") {
            // The reload is logged at level info: give it time instead.
            std::thread::sleep(Duration::from_secs(2));
            return;
        }
        let deadline = Instant::now() + READY_TIMEOUT;
        while reloaded() == before {
            assert!(
                Instant::now() < deadline,
                "Prosody did not reload its certificate within {READY_TIMEOUT:?}\nlog:\n{}",
                self.log()
            );
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    /// The config file.
    pub fn config_path(&self) -> PathBuf {
        self.path.join("prosody.cfg.lua")
    }

    /// Prosody's log.
    pub fn log_path(&self) -> PathBuf {
        self.path.join("prosody.log")
    }

    /// The log so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.log_path()).unwrap_or_default()
    }

    /// Where file storage keeps `store` (e.g. `archive`, `offline`) for `user`.
    pub fn store_file(&self, store: &str, user: &str) -> PathBuf {
        self.data_dir()
            .join(storage_host(&self.domain))
            .join(store)
            .join(format!("{user}.list"))
    }

    /// The MAM archive file of `user` (empty if none yet).
    pub fn archive_of(&self, user: &str) -> Vec<u8> {
        std::fs::read(self.store_file("archive", user)).unwrap_or_default()
    }

    /// The offline-message file of `user` (empty if none).
    pub fn offline_of(&self, user: &str) -> Vec<u8> {
        std::fs::read(self.store_file("offline", user)).unwrap_or_default()
    }

    /// Every file under the server's directory with its contents (data, logs,
    /// config; certificates included).
    pub fn all_files(&self) -> Vec<(PathBuf, Vec<u8>)> {
        crate::all_files(&self.path)
    }

    /// Login options for `user` (with a resource: `user@domain/resource`):
    /// STARTTLS on the c2s port, trusting only this server's certificate.
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

    /// Stops the server gracefully (SIGTERM, as `prosodyctl stop` would), so
    /// that everything is flushed to its files; SIGKILL after 10 s.
    pub fn stop(&mut self) {
        let Some(mut child) = self.child.take() else {
            return;
        };
        if matches!(child.try_wait(), Ok(None)) {
            // The shell's builtin kill: no dependency on procps.
            let _ = Command::new("sh")
                .arg("-c")
                .arg(format!("kill -TERM {}", child.id()))
                .status();
            let deadline = Instant::now() + Duration::from_secs(10);
            while matches!(child.try_wait(), Ok(None)) && Instant::now() < deadline {
                std::thread::sleep(Duration::from_millis(10));
            }
        }
        let _ = child.kill();
        let _ = child.wait();
    }

    /// The server's process id while it runs.
    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(Child::id)
    }

    /// Whether the process is still running.
    pub fn is_running(&mut self) -> bool {
        self.child
            .as_mut()
            .is_some_and(|c| matches!(c.try_wait(), Ok(None)))
    }

    fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

impl Drop for Prosody {
    fn drop(&mut self) {
        self.kill();
        if (std::thread::panicking() || std::env::var_os("ESESSION_KEEP_PROSODY").is_some())
            && let Some(dir) = self.dir.take()
        {
            let kept = dir.keep();
            let _ = writeln!(
                std::io::stderr(),
                "Prosody directory kept for inspection: {} (log: {})",
                kept.display(),
                kept.join("prosody.log").display()
            );
        }
    }
}
