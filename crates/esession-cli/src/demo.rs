//! `esession demo`: Alice and Bob in one process, over an in-memory router.

use std::time::{Duration, Instant};

use esession::{
    Config, Event, FixedClock, MemoryTrustStore, Output, SessionId, SessionManager,
    SystemRandomness, TerminationReason,
};
use esession_wire::minidom::{Element, Node};
use esession_wire::{ns, xml};

const ALICE: &str = "alice@example.org/pda";
const BOB: &str = "bob@example.com/laptop";

struct Party {
    name: &'static str,
    manager: SessionManager,
    events: Vec<Event>,
}

fn party(name: &'static str, jid: &str) -> Result<Party, String> {
    let rng = crate::rng::os_seeded()?;
    let config = Config {
        own_jid: Some(jid.to_owned()),
        ..Config::default()
    };
    let manager = SessionManager::new(
        config,
        Box::new(SystemRandomness::new(rng)),
        Box::new(MemoryTrustStore::new()),
        Box::new(FixedClock(1_700_000_000)),
    )
    .map_err(|e| e.to_string())?;
    Ok(Party {
        name,
        manager,
        events: Vec::new(),
    })
}

/// CPU time of this thread, from the kernel's scheduler statistics (Linux);
/// wall-clock time elsewhere.
fn thread_cpu_time() -> Option<Duration> {
    let text = std::fs::read_to_string("/proc/thread-self/schedstat").ok()?;
    let nanos = text.split_whitespace().next()?.parse::<u64>().ok()?;
    Some(Duration::from_nanos(nanos))
}

/// A copy of `el` with long text (Base64 values) cut for display.
fn abridged(el: &Element) -> Element {
    let mut out = Element::bare(el.name(), el.ns());
    for ((attr_ns, name), value) in el.attrs().iter() {
        if attr_ns.as_ref().is_empty() {
            let _ = xml::set_attr(&mut out, name.as_ref(), value.as_str());
        }
    }
    for node in el.nodes() {
        match node {
            Node::Element(child) => {
                out.append_child(abridged(child));
            }
            Node::Text(text) if text.chars().count() > 44 && !text.contains(' ') => {
                let head: String = text.chars().take(20).collect();
                let tail: String = text
                    .chars()
                    .rev()
                    .take(8)
                    .collect::<Vec<_>>()
                    .into_iter()
                    .rev()
                    .collect();
                out.append_text_node(format!("{head}…{tail}"));
            }
            Node::Text(text) => out.append_text_node(text.as_str()),
        }
    }
    out
}

fn show(label: &str, stanza: &Element) {
    let text = xml::serialize(&abridged(stanza), ns::JABBER_CLIENT).unwrap_or_default();
    println!("  {label}\n    {text}\n");
}

/// Delivers `out` from `from` to `to` and every reply back, until quiet.
/// Returns the stanzas that crossed the router, in order.
fn route<'a>(
    mut out: Output,
    mut from: &'a mut Party,
    mut to: &'a mut Party,
) -> Vec<(String, Element)> {
    let mut crossed = Vec::new();
    loop {
        from.events.append(&mut out.events);
        if out.stanzas.is_empty() {
            return crossed;
        }
        let mut replies = Output::default();
        for stanza in out.stanzas {
            crossed.push((format!("{} -> {}", from.name, to.name), stanza.clone()));
            let mut reply = to.manager.handle_stanza(&stanza);
            replies.stanzas.append(&mut reply.stanzas);
            replies.events.append(&mut reply.events);
        }
        out = replies;
        std::mem::swap(&mut from, &mut to);
    }
}

fn established(events: &[Event]) -> Option<(SessionId, esession::SessionInfo)> {
    events.iter().rev().find_map(|e| match e {
        Event::Established { session, info } => Some((session.clone(), info.clone())),
        _ => None,
    })
}

fn check(what: &str, ok: bool) -> Result<(), String> {
    println!("  [{}] {what}", if ok { " ok " } else { "FAIL" });
    if ok { Ok(()) } else { Err(what.to_owned()) }
}

fn negotiate(
    alice: &mut Party,
    bob: &mut Party,
    verbose: bool,
) -> Result<(SessionId, SessionId, Duration), String> {
    alice.events.clear();
    bob.events.clear();
    let cpu_start = thread_cpu_time();
    let wall_start = Instant::now();
    let (_, offer) = alice
        .manager
        .start_session(BOB)
        .map_err(|e| e.to_string())?;
    let crossed = route(offer, alice, bob);
    let elapsed = match (cpu_start, thread_cpu_time()) {
        (Some(a), Some(b)) => b.saturating_sub(a),
        _ => wall_start.elapsed(),
    };
    if verbose {
        let names = [
            "1. offer (SSN form, DH commitments)",
            "2. answer (choices, d, counter)",
            "3. completion (e, rshashes, Alice's identity)",
            "4. final <init/> (srshash, Bob's identity)",
        ];
        for ((route, stanza), name) in crossed.iter().zip(names) {
            show(&format!("{name}, {route}:"), stanza);
        }
    }
    // With a retained secret, Alice proves it at once with one encrypted
    // chat state after message 4, so Bob's `Established` carries the answer.
    let negotiation = crossed
        .iter()
        .filter(|(_, stanza)| !stanza.children().any(|c| c.name() == "c"))
        .count();
    check(
        "four negotiation messages crossed the router",
        negotiation == 4,
    )?;
    let (alice_id, alice_info) = established(&alice.events).ok_or("Alice has no session")?;
    let (bob_id, bob_info) = established(&bob.events).ok_or("Bob has no session")?;
    println!(
        "  SAS shown to Alice: {}    SAS shown to Bob: {}",
        alice_info.sas, bob_info.sas
    );
    check(
        "both short authentication strings are equal",
        alice_info.sas == bob_info.sas,
    )?;
    Ok((alice_id, bob_id, elapsed))
}

pub(crate) fn run() -> Result<(), String> {
    println!(
        "esession demo — Alice and Bob negotiate an XEP-0116 ESession over an in-memory router\n"
    );
    let mut alice = party("Alice", ALICE)?;
    let mut bob = party("Bob", BOB)?;

    println!("Session 1: first contact (4-message SIGMA-R, no public keys, SAS)\n");
    let (alice_id, bob_id, cpu) = negotiate(&mut alice, &mut bob, true)?;
    let info = alice
        .manager
        .session_info(&alice_id)
        .cloned()
        .ok_or("no info")?;
    println!(
        "  agreed: MODP group {}, {}, {}, compression {}, logging {}",
        info.group.id(),
        info.cipher,
        info.hash,
        info.compression.name(),
        info.logging.value()
    );
    println!(
        "  negotiation CPU time (both parties, this process): {:.2} ms",
        cpu.as_secs_f64() * 1e3
    );
    check(
        "not authenticated by a retained secret (first contact)",
        !info.authenticated_by_retained_secret,
    )?;
    alice
        .manager
        .confirm_sas(&alice_id)
        .map_err(|e| e.to_string())?;
    bob.manager
        .confirm_sas(&bob_id)
        .map_err(|e| e.to_string())?;
    println!("  (both users compared the SAS out of band and confirmed it)\n");

    println!("An encrypted message, Alice -> Bob:\n");
    let text = "Hello Bob! This sentence never leaves Alice's client in clear.";
    let out = alice
        .manager
        .send_text(&alice_id, text)
        .map_err(|e| e.to_string())?;
    let wire = out.stanzas.first().cloned().ok_or("nothing sent")?;
    show("on the wire (what the server sees):", &wire);
    let wire_text = xml::serialize(&wire, ns::JABBER_CLIENT).unwrap_or_default();
    check(
        "the body is not on the wire in clear",
        !wire_text.contains("Hello Bob") && !wire_text.contains("<body"),
    )?;
    let received = bob.manager.handle_stanza(&wire);
    let decrypted = received.events.iter().find_map(|e| match e {
        Event::MessageReceived { message, .. } => Some(message.clone()),
        _ => None,
    });
    let decrypted = decrypted.ok_or("Bob received nothing")?;
    show("as decrypted by Bob:", &decrypted);
    check(
        "Bob reads Alice's text",
        decrypted
            .get_child("body", ns::JABBER_CLIENT)
            .map(Element::text)
            .as_deref()
            == Some(text),
    )?;
    let reply = bob
        .manager
        .send_text(&bob_id, "Hi Alice, received.")
        .map_err(|e| e.to_string())?;
    let back = alice
        .manager
        .handle_stanza(reply.stanzas.first().ok_or("no reply")?);
    check(
        "Alice decrypts Bob's reply",
        back.events
            .iter()
            .any(|e| matches!(e, Event::MessageReceived { .. })),
    )?;

    println!(
        "\nTermination of session 1 (encrypted terminate form + encrypted acknowledgement):\n"
    );
    let out = alice
        .manager
        .terminate(&alice_id)
        .map_err(|e| e.to_string())?;
    route(out, &mut alice, &mut bob);
    check(
        "both sides ended the session",
        alice.events.iter().any(|e| {
            matches!(
                e,
                Event::Terminated {
                    reason: TerminationReason::LocalRequest,
                    ..
                }
            )
        }) && bob.events.iter().any(|e| {
            matches!(
                e,
                Event::Terminated {
                    reason: TerminationReason::PeerRequest,
                    ..
                }
            )
        }),
    )?;
    check(
        "nothing can be sent after termination",
        alice.manager.send_text(&alice_id, "x").is_err(),
    )?;

    println!("\nSession 2: the same parties again (retained secret from session 1)\n");
    let (alice2, bob2, cpu2) = negotiate(&mut alice, &mut bob, false)?;
    // Alice proved the retained secret right after message 4 (AMB-57, issue
    // 10): Bob's `Established` already says so.
    let (_, bob_announced) = established(&bob.events).ok_or("Bob has no session")?;
    check(
        "Bob's session is announced authenticated by the retained secret",
        bob_announced.authenticated_by_retained_secret,
    )?;
    let first = alice
        .manager
        .send_text(&alice2, "Hello again, Bob.")
        .map_err(|e| e.to_string())?;
    let got = bob
        .manager
        .handle_stanza(first.stanzas.first().ok_or("nothing sent")?);
    check(
        "Bob receives Alice's first message of session 2",
        got.events
            .iter()
            .any(|e| matches!(e, Event::MessageReceived { .. })),
    )?;
    let a2 = alice
        .manager
        .session_info(&alice2)
        .cloned()
        .ok_or("no info")?;
    let b2 = bob.manager.session_info(&bob2).cloned().ok_or("no info")?;
    println!("  negotiation CPU time: {:.2} ms", cpu2.as_secs_f64() * 1e3);
    check(
        "Alice: Bob proved the retained secret (no man in the middle since session 1)",
        a2.authenticated_by_retained_secret,
    )?;
    check(
        "Bob: Alice proved the retained secret",
        b2.authenticated_by_retained_secret,
    )?;
    check(
        "the retained-secret chain is SAS-verified, no reminder needed",
        a2.retained_chain_verified && !a2.sas_reminder,
    )?;
    let out = bob.manager.terminate(&bob2).map_err(|e| e.to_string())?;
    route(out, &mut bob, &mut alice);
    check(
        "session 2 terminated",
        bob.events
            .iter()
            .any(|e| matches!(e, Event::Terminated { .. })),
    )?;

    println!("\nAll demo steps verified.");
    Ok(())
}
