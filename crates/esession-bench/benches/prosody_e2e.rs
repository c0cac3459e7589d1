//! End-to-end benchmark (not a test): two of our clients (`EsessionClient`)
//! through one private Prosody on loopback, in the same run:
//!
//! - throughput: Alice sends N chat messages to Bob as fast as the client
//!   accepts them; timed from the first send to Bob's receipt of the last
//!   (every body checked, in order); in clear (`send_plain`) and encrypted
//!   (`send_text` in an established ESession);
//! - latency: sequential ping-pong, Alice → Bob → Alice, median and p95
//!   round-trip time, in clear and encrypted.
//!
//! The modes alternate within each repetition so that drift affects both.
//! Targets: encrypted throughput >= 0.9x plaintext, median RTT overhead <= 5%.
//!
//! ```sh
//! cargo bench -p esession-bench --bench prosody_e2e
//! # ESESSION_E2E_MESSAGES=5000 ESESSION_E2E_ROUNDS=500 ESESSION_E2E_REPEATS=5
//! ```
//!
//! The server runs without mod_mam: with Prosody's file storage each archive
//! append slows down as the archive grows (tens of thousands of messages here
//! bring it to a crawl), which would measure the archive, not the clients.
//!
//! Needs Debian's `prosody` package; without it, prints SKIPPED and exits 0
//! (fails under `ESESSION_REQUIRE_PROSODY=1`).

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    reason = "benchmark driver"
)]

use std::time::{Duration, Instant};

use esession::{Config, Event, MemoryTrustStore, SessionId};
use esession_testkit::peer::{Peer, both, manager};
use esession_testkit::{Archive, Prosody, prosody_or_skip};
use esession_wire::minidom::Element;
use esession_wire::ns;
use esession_xmpp::ClientEvent;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Mode {
    /// `send_plain`: `<message type='chat'><body>…</body></message>`.
    Plain,
    /// `send_plain` with the body padded so that the stanza is as long as an
    /// encrypted one: separates the cost of bytes from that of encryption.
    PlainSameSize,
    /// `send_text` in an established ESession.
    Encrypted,
    /// Issue 16: what users pick instead. An OMEMO-shaped message (XEP-0384
    /// v0.8 stanza: `<encrypted/>` with a header holding key elements for
    /// two devices, a payload, a store hint and a fallback body) of the same
    /// text, with random bytes where OMEMO has ciphertext: the server's and
    /// the clients' XML cost of OMEMO traffic, without its crypto (which
    /// only adds to OMEMO's side).
    Omemo,
}

const MODES: [Mode; 4] = [
    Mode::Plain,
    Mode::PlainSameSize,
    Mode::Encrypted,
    Mode::Omemo,
];

/// Padding that makes a plain stanza as long as the encrypted one.
static PAD: std::sync::OnceLock<String> = std::sync::OnceLock::new();

/// Body length requested with `ESESSION_E2E_BODY_LEN` (0: the default chat line).
static BODY_LEN: std::sync::OnceLock<usize> = std::sync::OnceLock::new();

/// Wire sizes (bytes, as serialised by minidom, without `id`/`from`) of a
/// plain and an encrypted chat message carrying `text` to `to`: negotiates a
/// session between two in-process managers and seals one message.
fn wire_sizes(text: &str, to: &str) -> (usize, usize) {
    const FROM: &str = "alice@localhost/bench";
    let config = |jid: &str| Config {
        own_jid: Some(jid.to_owned()),
        ..Config::default()
    };
    let mut alice = manager(Box::new(MemoryTrustStore::new()), config(FROM));
    let mut bob = manager(Box::new(MemoryTrustStore::new()), config(to));
    let (id, offer) = alice.start_session(to).unwrap();
    let answer = bob.handle_stanza(&offer.stanzas[0]);
    let completion = alice.handle_stanza(&answer.stanzas[0]);
    let last = bob.handle_stanza(&completion.stanzas[0]);
    let _ = alice.handle_stanza(&last.stanzas[0]);
    let sealed = alice.send_text(&id, text).unwrap();
    let encrypted = String::from(&sealed.stanzas[0]).len() - format!(" from=\"{FROM}\"").len();
    let mut plain = esession_wire::minidom::Element::bare("message", ns::JABBER_CLIENT);
    esession_wire::xml::set_attr(&mut plain, "to", to).unwrap();
    esession_wire::xml::set_attr(&mut plain, "type", "chat").unwrap();
    let mut body = esession_wire::minidom::Element::bare("body", ns::JABBER_CLIENT);
    body.append_text_node(text);
    plain.append_child(body);
    (String::from(&plain).len(), encrypted)
}

fn env_usize(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// A typical short chat line; in `PlainSameSize`, padded.
fn body(mode: Mode, kind: &str, i: usize) -> String {
    let mut text = format!("{kind} {i:06} the quick brown fox jumps over the lazy dog");
    // ESESSION_E2E_BODY_LEN: body length in bytes (default: this 50-byte chat line).
    let target = BODY_LEN.get().copied().unwrap_or(0);
    while text.len() < target {
        text.push_str(" lorem ipsum dolor sit amet");
    }
    if target > 0 {
        text.truncate(target);
    }
    match mode {
        Mode::PlainSameSize => text + PAD.get().map_or("", String::as_str),
        Mode::Plain | Mode::Encrypted | Mode::Omemo => text,
    }
}

/// The OMEMO fallback body Conversations sends, minus as many characters as
/// the message index and text take, so that the body carries `text` (the
/// receiver checks order by it) at the real fallback's length.
const OMEMO_FALLBACK: &str = "I sent you an OMEMO encrypted message but your client doesn't seem \
                              to support that. Find more information on https://conversations.im/omemo";

/// An OMEMO-shaped `<message/>` for `text` (see [`Mode::Omemo`]).
fn omemo_message(to: &str, text: &str, rng: &mut esession_bench::Rng) -> Element {
    use base64::Engine as _;
    use esession_crypto::rand_core::Rng as _;
    const OMEMO: &str = "urn:xmpp:omemo:2";
    let mut random = |len: usize| {
        let mut bytes = vec![0u8; len];
        rng.fill_bytes(&mut bytes);
        base64::engine::general_purpose::STANDARD.encode(bytes)
    };
    // An OMEMOAuthenticatedMessage per device (~120 bytes: MAC, ratchet
    // header, encrypted key); the payload is the SCE envelope of the text
    // (the text plus its XML and random padding, about 120 bytes more).
    let element = |name: &str, namespace: &str, attrs: &[(&str, &str)], text: Option<String>| {
        let mut element = Element::bare(name, namespace);
        for (attr, value) in attrs {
            esession_wire::xml::set_attr(&mut element, attr, *value).unwrap();
        }
        if let Some(text) = text {
            element.append_text_node(text);
        }
        element
    };
    let mut keys = element(
        "keys",
        OMEMO,
        &[("jid", to.split('/').next().unwrap_or(to))],
        None,
    );
    for rid in ["31415", "27182"] {
        keys.append_child(element("key", OMEMO, &[("rid", rid)], Some(random(120))));
    }
    let mut header = element("header", OMEMO, &[("sid", "16180")], None);
    header.append_child(keys);
    let mut encrypted = element("encrypted", OMEMO, &[], None);
    encrypted.append_child(header);
    encrypted.append_child(element(
        "payload",
        OMEMO,
        &[],
        Some(random(text.len() + 120)),
    ));
    let fallback = format!(
        "{text} {}",
        &OMEMO_FALLBACK[..OMEMO_FALLBACK.len().saturating_sub(text.len() + 1)]
    );
    let mut message = element(
        "message",
        ns::JABBER_CLIENT,
        &[("to", to), ("type", "chat")],
        None,
    );
    message.append_child(encrypted);
    message.append_child(element("store", "urn:xmpp:hints", &[], None));
    message.append_child(element("body", ns::JABBER_CLIENT, &[], Some(fallback)));
    message
}

/// The text an OMEMO-shaped message carried (its fallback body starts with it).
fn omemo_text(body: &str) -> &str {
    body.rfind(" I sent you").map_or(body, |end| &body[..end])
}

/// Sends `text` to the other side in `mode`.
async fn send(peer: &mut Peer, to: &str, session: &SessionId, mode: Mode, text: &str) {
    match mode {
        Mode::Plain | Mode::PlainSameSize => peer.client().send_plain(to, text).await.unwrap(),
        Mode::Encrypted => peer.client().send_text(session, text).await.unwrap(),
        Mode::Omemo => {
            // Built per message, as an OMEMO client builds each one.
            let stanza = OMEMO_RNG.with(|rng| omemo_message(to, text, &mut rng.borrow_mut()));
            peer.client().send_plain_stanza(stanza).await.unwrap();
        }
    }
}

thread_local! {
    static OMEMO_RNG: std::cell::RefCell<esession_bench::Rng> =
        const { std::cell::RefCell::new(esession_bench::Rng(0x5eed_0384)) };
}

/// The next message body received in `mode`.
async fn receive(peer: &mut Peer, mode: Mode) -> String {
    loop {
        let event = tokio::time::timeout(Duration::from_secs(60), peer.client().next_event())
            .await
            .expect("a message within 60 s")
            .expect("connection open");
        match (mode, event) {
            (Mode::Plain | Mode::PlainSameSize, ClientEvent::PlainMessage { body, .. }) => {
                return body;
            }
            (Mode::Omemo, ClientEvent::PlainMessage { body, .. }) => {
                return omemo_text(&body).to_owned();
            }
            (Mode::Encrypted, ClientEvent::Session(Event::MessageReceived { message, .. })) => {
                return message
                    .get_child("body", ns::JABBER_CLIENT)
                    .map(|b| b.text())
                    .expect("body");
            }
            (_, ClientEvent::Disconnected { reason, .. }) => panic!("disconnected: {reason}"),
            (_, ClientEvent::Session(event @ Event::Terminated { .. })) => panic!("{event:?}"),
            _ => {}
        }
    }
}

struct Pair {
    alice: Peer,
    bob: Peer,
    /// Alice's and Bob's ids of the one ESession.
    a_session: SessionId,
    b_session: SessionId,
}

/// N messages Alice → Bob; returns messages per second.
async fn throughput(pair: Pair, mode: Mode, n: usize) -> (Pair, f64) {
    let Pair {
        mut alice,
        mut bob,
        a_session,
        b_session,
    } = pair;
    let bob_jid = bob.jid().to_owned();
    let session = a_session.clone();
    let start = Instant::now();
    let ((alice, ()), (bob, last)) = both(
        async move {
            for i in 0..n {
                send(&mut alice, &bob_jid, &session, mode, &body(mode, "tp", i)).await;
            }
            (alice, ())
        },
        async move {
            for i in 0..n {
                let got = receive(&mut bob, mode).await;
                assert_eq!(got, body(mode, "tp", i), "message {i} in {mode:?}");
            }
            (bob, Instant::now())
        },
    )
    .await;
    let rate = n as f64 / last.duration_since(start).as_secs_f64();
    (
        Pair {
            alice,
            bob,
            a_session,
            b_session,
        },
        rate,
    )
}

/// `rounds` sequential ping-pongs; returns the round-trip times.
async fn ping_pong(pair: Pair, mode: Mode, rounds: usize) -> (Pair, Vec<Duration>) {
    let Pair {
        mut alice,
        mut bob,
        a_session,
        b_session,
    } = pair;
    let (alice_jid, bob_jid) = (alice.jid().to_owned(), bob.jid().to_owned());
    let (sa, sb) = (a_session.clone(), b_session.clone());
    let ((alice, rtts), (bob, ())) = both(
        async move {
            let mut rtts = Vec::with_capacity(rounds);
            for i in 0..rounds {
                let t0 = Instant::now();
                send(&mut alice, &bob_jid, &sa, mode, &body(mode, "ping", i)).await;
                let got = receive(&mut alice, mode).await;
                rtts.push(t0.elapsed());
                assert_eq!(got, body(mode, "pong", i));
            }
            (alice, rtts)
        },
        async move {
            for i in 0..rounds {
                let got = receive(&mut bob, mode).await;
                assert_eq!(got, body(mode, "ping", i));
                send(&mut bob, &alice_jid, &sb, mode, &body(mode, "pong", i)).await;
            }
            (bob, ())
        },
    )
    .await;
    (
        Pair {
            alice,
            bob,
            a_session,
            b_session,
        },
        rtts,
    )
}

fn median(values: &mut [f64]) -> f64 {
    values.sort_by(f64::total_cmp);
    let n = values.len();
    if n % 2 == 1 {
        values[n / 2]
    } else {
        (values[n / 2 - 1] + values[n / 2]) / 2.0
    }
}

fn percentile(values: &mut [f64], p: f64) -> f64 {
    values.sort_by(f64::total_cmp);
    let index = ((values.len() as f64 - 1.0) * p).round() as usize;
    values[index]
}

/// CPU seconds (user + system) of process `pid` ("self" for us).
fn cpu_seconds(pid: &str) -> f64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    // Fields after the parenthesised command name; utime and stime are 14 and 15.
    let rest = stat.rsplit_once(')').map_or("", |(_, r)| r);
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let ticks = |i: usize| {
        fields
            .get(i)
            .and_then(|f| f.parse::<f64>().ok())
            .unwrap_or(0.0)
    };
    // Field 14 is index 11 after the state field (field 3 is index 0).
    (ticks(11) + ticks(12)) / 100.0
}

#[derive(Default)]
struct Cpu {
    server: f64,
    clients: f64,
    messages: usize,
}

async fn run(server: &Prosody, messages: usize, rounds: usize, repeats: usize) {
    let login = |user: &'static str, resource: &'static str| {
        let options = server.connect_options(user, resource, &format!("{user}-pw"));
        async move {
            Peer::login(
                user,
                &options,
                manager(Box::new(MemoryTrustStore::new()), Config::default()),
            )
            .await
        }
    };
    let alice = login("alice", "bench").await;
    let bob = login("bob", "bench").await;
    let bob_full = bob.jid().to_owned();
    let ((alice, a_session), (bob, b_session)) = both(
        async move {
            let mut alice = alice;
            let (session, _) = alice.start(&bob_full).await;
            (alice, session)
        },
        async move {
            let mut bob = bob;
            let (session, _) = bob.established().await;
            (bob, session)
        },
    )
    .await;
    let mut pair = Pair {
        alice,
        bob,
        a_session,
        b_session,
    };
    // Warm-up: TLS, allocators, Prosody's caches.
    for mode in MODES {
        (pair, _) = throughput(pair, mode, messages.min(500)).await;
        (pair, _) = ping_pong(pair, mode, 50).await;
    }
    let server_pid = server.pid().map(|p| p.to_string()).unwrap_or_default();
    let mut rates: [Vec<f64>; 4] = Default::default();
    let mut rtts: [Vec<f64>; 4] = Default::default();
    let mut cpu: [Cpu; 4] = Default::default();
    for repeat in 0..repeats {
        // Rotate which mode goes first.
        let mut order = MODES;
        order.rotate_left(repeat % MODES.len());
        for mode in order {
            let k = MODES.iter().position(|m| *m == mode).unwrap_or(0);
            let (s0, c0) = (cpu_seconds(&server_pid), cpu_seconds("self"));
            let rate;
            (pair, rate) = throughput(pair, mode, messages).await;
            cpu[k].server += cpu_seconds(&server_pid) - s0;
            cpu[k].clients += cpu_seconds("self") - c0;
            cpu[k].messages += messages;
            rates[k].push(rate);
            let times;
            (pair, times) = ping_pong(pair, mode, rounds).await;
            rtts[k].extend(times.iter().map(|d| d.as_secs_f64() * 1e3));
        }
    }
    pair.alice.disconnect().await;
    pair.bob.disconnect().await;

    let runs: Vec<String> = rates
        .iter()
        .map(|r| {
            r.iter()
                .map(|v| format!("{v:.0}"))
                .collect::<Vec<_>>()
                .join(" ")
        })
        .collect();
    let tp: Vec<f64> = rates.iter_mut().map(|r| median(r)).collect();
    let rtt_med: Vec<f64> = rtts.iter_mut().map(|r| median(r)).collect();
    let rtt_p95: Vec<f64> = rtts.iter_mut().map(|r| percentile(r, 0.95)).collect();
    let per_msg = |secs: f64, c: &Cpu| secs * 1e6 / c.messages.max(1) as f64;
    let server_us: Vec<f64> = cpu.iter().map(|c| per_msg(c.server, c)).collect();
    let client_us: Vec<f64> = cpu.iter().map(|c| per_msg(c.clients, c)).collect();
    let row = |label: &str, v: &[f64], digits: usize| {
        println!(
            "{label:<36} {:>10.digits$} {:>10.digits$} {:>10.digits$} {:>10.digits$} {:>9.3}x \
             {:>9.3}x {:>9.3}x",
            v[0],
            v[1],
            v[2],
            v[3],
            v[2] / v[0],
            v[2] / v[1],
            v[2] / v[3]
        );
    };
    println!();
    println!(
        "{:<36} {:>10} {:>10} {:>10} {:>10} {:>10} {:>10} {:>10}",
        "", "plain", "plain=size", "encrypted", "omemo-like", "enc/plain", "enc/=size", "enc/omemo"
    );
    row("throughput, median (msg/s)", &tp, 0);
    for (mode, runs) in MODES.iter().zip(&runs) {
        println!("  {mode:?} runs (msg/s): {runs}");
    }
    row("ping-pong RTT, median (ms)", &rtt_med, 3);
    row("ping-pong RTT, p95 (ms)", &rtt_p95, 3);
    row("Prosody CPU per message (us)", &server_us, 1);
    row("both clients' CPU per message (us)", &client_us, 1);
    println!(
        "(CPU from /proc, 10 ms ticks; throughput runs only. Prosody is single-threaded: \
         at ~1e6 us/s it is the bottleneck.)"
    );
    println!(
        "Prosody CPU use during throughput runs: {:.0}% / {:.0}% / {:.0}% / {:.0}% of one core",
        server_us[0] * tp[0] / 1e4,
        server_us[1] * tp[1] / 1e4,
        server_us[2] * tp[2] / 1e4,
        server_us[3] * tp[3] / 1e4
    );
    println!();
    let tp_ratio = tp[2] / tp[0];
    let rtt_overhead = rtt_med[2] / rtt_med[0] - 1.0;
    let verdict = |ok: bool| if ok { "MET" } else { "MISSED" };
    println!(
        "target: encrypted throughput >= 0.90x plaintext: {tp_ratio:.3}x  {}  \
         (vs same-size plaintext: {:.3}x)",
        verdict(tp_ratio >= 0.9),
        tp[2] / tp[1]
    );
    println!(
        "target: median RTT overhead <= 5%: {:+.1}%  {}  (vs same-size plaintext: {:+.1}%)",
        rtt_overhead * 100.0,
        verdict(rtt_overhead <= 0.05),
        (rtt_med[2] / rtt_med[1] - 1.0) * 100.0
    );
    // Issue 16: against the OMEMO-shaped message of the same text.
    println!(
        "target: encrypted throughput >= 1.0x OMEMO-shaped: {:.3}x  {}",
        tp[2] / tp[3],
        verdict(tp[2] >= tp[3])
    );
    println!(
        "target: encrypted median RTT <= OMEMO-shaped: {:.3} ms vs {:.3} ms ({:+.1}%)  {}",
        rtt_med[2],
        rtt_med[3],
        (rtt_med[2] / rtt_med[3] - 1.0) * 100.0,
        verdict(rtt_med[2] <= rtt_med[3])
    );
    println!(
        "client CPU per message, encrypted / plaintext: {:.2}x (target <= 1.5x); encrypted / \
         OMEMO-shaped (no OMEMO crypto): {:.2}x",
        client_us[2] / client_us[0],
        client_us[2] / client_us[3]
    );
}

fn main() {
    let Some(prosody) = prosody_or_skip("prosody_e2e benchmark") else {
        return;
    };
    let messages = env_usize("ESESSION_E2E_MESSAGES", 5000);
    let rounds = env_usize("ESESSION_E2E_ROUNDS", 500);
    let repeats = env_usize("ESESSION_E2E_REPEATS", 5);
    BODY_LEN.get_or_init(|| env_usize("ESESSION_E2E_BODY_LEN", 0));
    let (plain_size, encrypted_size) =
        wire_sizes(&body(Mode::Plain, "tp", 0), "bob@localhost/bench");
    PAD.get_or_init(|| " ".to_owned() + &"x".repeat(encrypted_size.saturating_sub(plain_size + 1)));
    println!(
        "wire size of one chat message: plain {plain_size} bytes, encrypted {encrypted_size} bytes \
         (XEP-0200 <c/> with <data/> and <mac/>, <thread/>, AMP rule)"
    );
    let server = prosody.server("localhost", Archive::Off);
    server.register("alice", "alice-pw");
    server.register("bob", "bob-pw");
    println!(
        "prosody_e2e: 2 EsessionClients through one Prosody on 127.0.0.1 (STARTTLS, no MAM), \
         {messages} msgs x {repeats} for throughput, {rounds} x {repeats} ping-pongs, \
         modes alternated; {} CPUs",
        std::thread::available_parallelism().map_or(0, usize::from)
    );
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(run(&server, messages, rounds, repeats));
}
