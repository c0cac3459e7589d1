//! `esession send` and `esession listen`: for scripts and bots.

use std::io::Read;
use std::time::Duration;

use esession::{
    Config, Error, Event, PeerKeyInfo, SecurityAlert, SessionId, SessionInfo, StanzaKind,
};
use esession_wire::minidom::Element;
use esession_wire::ns;
use esession_xmpp::ClientEvent;
use serde_json::{Value, json};

use crate::account::{clock_time, login, manager, open_store};
use crate::present;
use crate::profile::{ProfileName, session_target};
use crate::settings::Settings;

/// What `listen --help` says about the JSON events.
pub(crate) const JSON_HELP: &str = "\
JSON events (--json), one object per line, each with \"event\", \"time\" (UTC) and most with \
\"peer\" and \"thread\":
established: flow (\"4-message\" or \"3-message\"), group, cipher, hash, compression, sas (null \
in the 3-message flow), peer_key (null, or fingerprint as lower-case hex, petname, algorithm, \
verified), authenticated_by_retained_secret, retained_chain_verified, stanzas.
message: body, encrypted. presence: type, show, status.
alert: alert = {kind, message for a person, and its facts: key, previous_fingerprints, \
other_jids, fingerprint, disclosure}.
negotiation_failed: error = {kind, condition (the XMPP error condition, e.g. \
\"feature-not-implemented\", or null), fields, message}.
terminated: reason (e.g. \"peer_request\", \"peer_unavailable\"), message.
delivered: id (the encrypted receipt of a message we sent).
unknown_session: a stanza of a session we no longer have arrived; answered (the sender was told).
disconnected: reason (the connection dropped; reconnecting). resumed: the stream came back \
(XEP-0198), sessions continue. reconnected: jid (a new stream; the old sessions ended).
Also: retained_secret_proven, declined, ignored, subscription_request, server_archive, notice. \
The versioned schema of every event is docs/JSON.md.";

/// Which offers `listen` accepts.
#[derive(clap::ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum AcceptPolicy {
    /// Every offer, from anyone.
    Any,
    /// Offers from contacts subscribed to our presence (roster `from` or
    /// `both`); others are never answered (SSN-09, ESN-07).
    Subscribers,
    /// None: offers from contacts subscribed to our presence are declined,
    /// others are never answered (SSN-09, ESN-07).
    None,
}

/// `esession send CONTACT [MESSAGE]`: one encrypted message, then terminate.
pub(crate) async fn send(
    settings: &Settings,
    contact: &str,
    message: Option<String>,
    timeout: u64,
    profile: Option<ProfileName>,
    json_output: bool,
) -> Result<(), String> {
    let result = send_text(settings, contact, message, timeout, profile, json_output).await;
    if let (true, Err(message)) = (json_output, &result) {
        println!(
            "{}",
            json!({"event": "error", "command": "send", "id": null, "message": message, "time": clock_time()})
        );
    }
    result
}

async fn send_text(
    settings: &Settings,
    contact: &str,
    message: Option<String>,
    timeout: u64,
    profile: Option<ProfileName>,
    json_output: bool,
) -> Result<(), String> {
    // Issue 15: with --json, the events go to stdout; the sentences stay on stderr.
    let event = |value: Value| {
        if json_output {
            println!("{value}");
        }
    };
    let text = match message {
        Some(text) => text,
        None => {
            let mut text = String::new();
            std::io::stdin()
                .read_to_string(&mut text)
                .map_err(|e| e.to_string())?;
            text.trim_end_matches('\n').to_owned()
        }
    };
    let store = open_store(settings)?;
    let mut manager = manager(settings, &store, Config::default())?;
    if let Some(name) = profile {
        manager.set_profile(contact, name.profile());
    }
    // A one-off: what is sent to our bare JID is for a client that reads it.
    let mut client = login(settings, manager, crate::account::Inbox::Ignores).await?;
    eprintln!("{}", crate::account::archive_line(&client));
    event(archive_json(client.server_archive(), &clock_time()));
    crate::profile::announce(&client, contact);
    // Issue 13 (OFF-07): a contact who published offline options (only those
    // who share presence with us can be read) and shows no presence gets the
    // message as an offline session; everyone else a session as usual.
    if let Ok(bare) = jid::BareJid::new(contact) {
        let options = client
            .fetch_offline_options(&bare)
            .await
            .unwrap_or_default();
        if !options.is_empty()
            && crate::published::contact_seems_offline(&mut client, contact, Duration::from_secs(3))
                .await
        {
            let sent = if settings.public_keys {
                let history = settings
                    .account()
                    .ok()
                    .and_then(|account| store.account(&account).ok());
                crate::published::send_to_options(
                    &mut client,
                    &bare,
                    &options,
                    &text,
                    true,
                    history.as_ref(),
                )
                .await
                .map(|(session, signer)| {
                    event(
                        json!({"event": "sent_offline", "peer": session.peer.as_str(),
                                 "thread": session.thread, "signer": signer, "time": clock_time()}),
                    );
                    signer
                })
            } else {
                Err(format!(
                    "{contact} is offline and accepts offline encrypted messages (XEP-0187), which need your signing key: run again with --public-keys. Nothing was sent."
                ))
            };
            client.disconnect().await;
            let signer = sent?;
            if json_output {
                // Standard output carries only JSON.
                eprintln!(
                    "{}",
                    crate::published::sent_offline_sentence(contact, &signer)
                );
            } else {
                crate::published::report_sent_offline(contact, &signer);
            }
            return Ok(());
        }
    }
    // Gajim needs a full JID: wait a moment for the contact's presence. What
    // arrives meanwhile concerns no session of ours yet.
    let (target, _) = session_target(&mut client, contact, Duration::from_secs(5)).await?;
    if settings.public_keys {
        // Issue 13: the contact's published key, before the offer.
        for line in crate::published::fetch_before_negotiating(
            &mut client,
            &store,
            &settings.account()?,
            contact,
        )
        .await
        {
            eprintln!("{line}");
        }
    }
    let started = client
        .start_session(&target)
        .await
        .map_err(|e| e.to_string())?;
    let wait = async {
        while let Some(event) = client.next_event().await {
            match event {
                ClientEvent::Session(Event::Established { session, info }) => {
                    return Ok((session, info));
                }
                ClientEvent::Session(Event::NegotiationFailed { session, error })
                    if session.thread == started.thread =>
                {
                    return Err(present::failure(session.peer.as_str(), &error));
                }
                ClientEvent::Disconnected {
                    reason,
                    fatal: true,
                    ..
                } => return Err(reason),
                _ => {}
            }
        }
        Err("the connection closed".to_owned())
    };
    let established = tokio::time::timeout(Duration::from_secs(timeout), wait)
        .await
        .map_err(|_| format!("{contact} did not complete an encrypted session within {timeout} s (offline, or no ESession support)"))
        .and_then(|r| r);
    let result = match established {
        Ok((session, info)) => {
            eprintln!("{}", present::established(session.peer.as_str(), &info));
            event(established_json(&session, &info, &clock_time()));
            let sent = client.send_text_with_receipt(&session, &text).await;
            if let Ok(receipt) = &sent {
                keep(&store, settings, &client, (&session, None), true, &text);
                event(
                    json!({"event": "sent", "peer": session.peer.as_str(), "thread": session.thread,
                             "receipt": receipt, "time": clock_time()}),
                );
            }
            // Issue 10: say whether it arrived (the encrypted receipt).
            if let Ok(id) = &sent {
                let delivered = tokio::time::timeout(Duration::from_secs(5), async {
                    while let Some(event) = client.next_event().await {
                        if let ClientEvent::Session(Event::MessageDelivered { id: acked, .. }) =
                            event
                            && acked == *id
                        {
                            return true;
                        }
                    }
                    false
                })
                .await
                .unwrap_or(false);
                let outcome = if delivered {
                    "delivered"
                } else {
                    "not_delivered"
                };
                event(
                    json!({"event": outcome, "peer": session.peer.as_str(), "thread": session.thread,
                             "id": id, "time": clock_time()}),
                );
                if delivered {
                    eprintln!("*** Delivered (encrypted receipt from {}).", session.peer);
                } else {
                    eprintln!(
                        "!!! Sent, but no delivery receipt from {} within 5 s: their client may not send receipts, or the message was not delivered.",
                        session.peer
                    );
                }
            }
            if client.terminate(&session).await.is_ok() {
                let _ = tokio::time::timeout(Duration::from_secs(5), async {
                    while let Some(event) = client.next_event().await {
                        if matches!(event, ClientEvent::Session(Event::Terminated { .. })) {
                            break;
                        }
                    }
                })
                .await;
            }
            sent.map(|_| ()).map_err(|e| e.to_string())
        }
        Err(e) => Err(e),
    };
    // Every exit goes offline through disconnect(), which terminates any
    // session still open first (ESN-45).
    let _ = tokio::time::timeout(Duration::from_secs(5), client.disconnect()).await;
    result
}

/// `esession listen`: accept sessions and print what arrives.
/// `esession listen` (`commands` false) and `esession serve` (`commands`
/// true: JSON-lines commands on standard input, see [`crate::serve`]): the
/// same loop, so the two cannot drift apart.
pub(crate) async fn listen(
    settings: &Settings,
    json_output: bool,
    policy: AcceptPolicy,
    count: Option<usize>,
    commands: bool,
) -> Result<(), String> {
    let store = open_store(settings)?;
    let config = Config {
        auto_accept: policy != AcceptPolicy::None,
        answer_only_subscribers: policy != AcceptPolicy::Any,
        ..Config::default()
    };
    let mut departure = crate::published::Departure::on_exit(settings, &store)?;
    // Watched from the start: a SIGINT or SIGTERM during the login or the
    // first round trips still leaves cleanly.
    let mut interrupted = crate::serve::signal(tokio::signal::unix::SignalKind::interrupt())?;
    let mut terminated = crate::serve::signal(tokio::signal::unix::SignalKind::terminate())?;
    let mut client = login(
        settings,
        manager(settings, &store, config)?,
        crate::account::Inbox::Reads,
    )
    .await?;
    let mut received = 0usize;
    let mut offline_sessions = std::collections::HashMap::new();
    // A reader that went away must not make us panic: what cannot be
    // written is dropped, and the end of input (or a signal) ends the run.
    let emit = |value: serde_json::Value, text: String| {
        use std::io::Write as _;
        let mut out = std::io::stdout().lock();
        let _ = if json_output {
            writeln!(out, "{value}")
        } else {
            writeln!(out, "{text}")
        };
    };
    // `serve` says first who it is and which schema it speaks.
    if commands {
        emit(
            crate::serve::ready_json(&client, &clock_time()),
            "*** Ready for commands.".to_owned(),
        );
    }
    // XEP-0187 (OFF-13): the option sets kept while we were away read what
    // contacts wrote meanwhile; the stored copies are destroyed now.
    match crate::published::hold_kept_offline_options(settings, &store, &mut client).await {
        Ok(0) => {}
        Ok(held) => emit(
            json!({"event": "offline_options_held", "sets": held, "time": clock_time()}),
            format!(
                "*** Back online: {held} offline option set(s) kept from before read messages written while you were away; they are withdrawn from your server and will not be used again."
            ),
        ),
        // Listening goes on: only messages written while we were away are unreadable.
        Err(e) => emit(
            json!({"event": "alert", "text": e, "time": clock_time()}),
            format!("!!! {e}; messages written while you were away cannot be read"),
        ),
    }
    // Issue 14: what the server archives decides whether off the record is
    // possible (checked at login, before our presence went out).
    let archive = client.server_archive();
    emit(
        archive_json(archive, &clock_time()),
        format!("*** Server archive: {}.", archive.describe()),
    );
    // Ctrl-C, SIGTERM (or the end of the stream, --count, or with commands
    // the end of standard input or `quit`) leaves through disconnect(),
    // which terminates every session first (ESN-45).
    let mut input = commands.then(crate::serve::stdin_lines);
    loop {
        let event = tokio::select! {
            _ = interrupted.recv() => break,
            _ = terminated.recv() => break,
            line = crate::serve::next_line(&mut input) => {
                let Some(mut line) = line else { break };
                let (value, text, quit) =
                    crate::serve::command(&mut client, &store, settings, &line).await;
                // A `secret` command's line held the secret.
                zeroize::Zeroize::zeroize(&mut line);
                emit(value, text);
                if quit {
                    break;
                }
                continue;
            }
            event = client.next_event() => event,
        };
        let Some(event) = event else { break };
        let time = clock_time();
        match event {
            ClientEvent::Session(Event::OfferReceived { session }) => {
                // Policy `none` declines (SSN-07), but only to a subscriber:
                // a stranger gets no answer at all (SSN-09, ESN-07); so does
                // any offer the core held under policy `subscribers`.
                if policy == AcceptPolicy::None
                    && client
                        .manager()
                        .is_presence_subscribed(session.peer.as_str())
                {
                    let _ = client.reject_offer(&session).await;
                    emit(
                        json!({"event": "declined", "peer": session.peer.as_str(), "time": time}),
                        format!("[{time}] declined an offer from {}", session.peer),
                    );
                } else {
                    emit(
                        json!({"event": "ignored", "peer": session.peer.as_str(), "time": time}),
                        format!(
                            "[{time}] left an offer from {} unanswered (not subscribed to our presence)",
                            session.peer
                        ),
                    );
                }
            }
            ClientEvent::Session(Event::Established { session, info }) => {
                emit(
                    established_json(&session, &info, &time),
                    present::established(session.peer.as_str(), &info),
                );
                if info.offline {
                    // Kept for the messages: a one-shot session is gone when they arrive.
                    offline_sessions.insert(session, info);
                    continue; // Read-only (OFF-16): nothing to send in it.
                }
                // Our encrypted directed presence: the server then tells the
                // contact when we go offline, which ends the session (SSN-16).
                if info.stanzas.contains(&StanzaKind::Presence) {
                    let mut presence = Element::bare("presence", ns::JABBER_CLIENT);
                    if esession_wire::xml::set_attr(&mut presence, "to", session.peer.as_str())
                        .is_ok()
                    {
                        let _ = client.send_stanza(&session, presence).await;
                    }
                }
            }
            ClientEvent::Session(Event::StanzaReceived { session, stanza }) => {
                match (stanza.name(), stanza.attr("type")) {
                    // RFC 6120 §8.2.3: every request is answered; pings and
                    // disco#info were answered by the client already.
                    ("iq", Some("get" | "set")) => {
                        let _ = client.refuse_iq(&session, &stanza).await;
                    }
                    ("presence", kind) => {
                        let text = |name: &str| {
                            stanza.get_child(name, ns::JABBER_CLIENT).map(|e| e.text())
                        };
                        emit(
                            json!({"event": "presence", "peer": session.peer.as_str(), "type": kind.unwrap_or("available"),
                                   "show": text("show"), "status": text("status"), "encrypted": true, "time": time}),
                            present::presence(session.peer.as_str(), &stanza).unwrap_or_else(
                                || {
                                    format!(
                                        "*** {} sent presence ({})",
                                        session.peer,
                                        kind.unwrap_or("available")
                                    )
                                },
                            ),
                        );
                    }
                    _ => {}
                }
            }
            ClientEvent::Session(Event::MessageReceived {
                session, message, ..
            }) => {
                // A message without a body (a chat state, the initiator's
                // proof of its retained secret) has nothing to show.
                let Some(body) = present::body(&message) else {
                    continue;
                };
                // XEP-0187: an offline message says when it was written (OFF-12).
                // A one-shot offline session is gone by now: remembered from
                // its `Established`, which comes first.
                let offline = offline_sessions.contains_key(&session);
                let written = offline
                    .then(|| esession::offline::created_at(&message))
                    .flatten();
                emit(
                    json!({"event": "message", "peer": session.peer.as_str(), "thread": session.thread, "body": body,
                           "encrypted": true, "offline": offline, "written": written, "time": time}),
                    if offline {
                        format!(
                            "[{time}] {} (offline message{}): {body}",
                            session.peer,
                            present::written_at(&message)
                        )
                    } else {
                        format!("[{time}] {}: {body}", session.peer)
                    },
                );
                keep(
                    &store,
                    settings,
                    &client,
                    (&session, offline_sessions.get(&session)),
                    false,
                    &body,
                );
                received += 1;
                if count.is_some_and(|n| received >= n) {
                    break;
                }
            }
            ClientEvent::Session(Event::Terminated { session, reason }) => emit(
                json!({"event": "terminated", "peer": session.peer.as_str(), "thread": session.thread,
                       "reason": reason.name(),
                       "message": present::terminated(session.peer.as_str(), &reason), "time": time}),
                present::terminated(session.peer.as_str(), &reason),
            ),
            ClientEvent::Session(Event::RetainedSecretProven {
                session,
                chain_verified,
            }) => emit(
                json!({"event": "retained_secret_proven", "peer": session.peer.as_str(), "thread": session.thread, "chain_verified": chain_verified, "time": time}),
                format!("[{time}] {} proved the retained secret", session.peer),
            ),
            ClientEvent::Session(Event::SecurityAlert { session, alert }) => emit(
                json!({"event": "alert", "peer": session.peer.as_str(), "thread": session.thread,
                       "alert": alert_json(session.peer.as_str(), &alert), "time": time}),
                present::alert(session.peer.as_str(), &alert),
            ),
            ClientEvent::Session(Event::NegotiationFailed { session, error }) => emit(
                json!({"event": "negotiation_failed", "peer": session.peer.as_str(), "thread": session.thread,
                       "error": error_json(session.peer.as_str(), &error), "time": time}),
                present::failure(session.peer.as_str(), &error),
            ),
            ClientEvent::Session(Event::MessageDelivered { session, id }) => emit(
                json!({"event": "delivered", "peer": session.peer.as_str(), "thread": session.thread,
                       "id": id, "time": time}),
                format!("*** {} acknowledged message {id}", session.peer),
            ),
            ClientEvent::Session(Event::UnknownSessionStanza { session, answered }) => emit(
                json!({"event": "unknown_session", "peer": session.peer.as_str(), "thread": session.thread,
                       "answered": answered, "time": time}),
                format!(
                    "!!! {} wrote in an encrypted session we no longer have; it cannot be read{}.",
                    session.peer,
                    if answered { " (they were told)" } else { "" }
                ),
            ),
            ClientEvent::Session(Event::OfflineMessageRejected { session, reason }) => emit(
                json!({"event": "offline_message_rejected", "peer": session.peer.as_str(),
                       "thread": session.thread, "reason": reason.describe(), "time": time}),
                present::other(&Event::OfflineMessageRejected {
                    session: session.clone(),
                    reason,
                })
                .unwrap_or_default(),
            ),
            ClientEvent::Session(other) => {
                if let Some(text) = present::other(&other) {
                    emit(json!({"event": "notice", "text": text, "time": time}), text);
                }
            }
            ClientEvent::PlainMessage { from, body } => emit(
                json!({"event": "message", "peer": from, "body": body, "encrypted": false, "time": time}),
                format!("[{time}] {from} (NOT ENCRYPTED): {body}"),
            ),
            ClientEvent::Resumed => emit(
                json!({"event": "resumed", "time": time}),
                "*** Connection back: the stream was resumed (XEP-0198); sessions continue."
                    .to_owned(),
            ),
            ClientEvent::Reconnected { jid } => {
                emit(
                    json!({"event": "reconnected", "jid": jid, "time": time}),
                    format!(
                        "*** Reconnected as {jid}: the old sessions ended; new ones start on demand."
                    ),
                );
                // Checked again on the new stream before it was announced.
                let archive = client.server_archive();
                emit(
                    archive_json(archive, &clock_time()),
                    format!("*** Server archive: {}.", archive.describe()),
                );
            }
            ClientEvent::OffTheRecordFailed {
                contact,
                reason,
                sessions_ended,
            } => emit(
                json!({
                    "event": "off_the_record_failed",
                    "peer": contact,
                    "reason": reason,
                    "sessions_ended": sessions_ended.iter().map(|s| s.thread.clone()).collect::<Vec<_>>(),
                    "time": time,
                }),
                present::off_the_record_failed(&contact, &reason, sessions_ended.len()),
            ),
            ClientEvent::SubscriptionRequest { from } => emit(
                json!({"event": "subscription_request", "peer": from, "time": time}),
                format!(
                    "*** {from} asks to see when you are online (`esession roster approve {from}`)."
                ),
            ),
            ClientEvent::ArchivePreferenceNotRestored { contact, reason } => emit(
                json!({"event": "archive_preference_not_restored", "peer": contact, "reason": reason, "time": time}),
                present::archive_rule_not_restored(&contact, &reason),
            ),
            ClientEvent::Disconnected { reason, fatal, .. } => {
                emit(
                    json!({"event": "disconnected", "reason": reason, "time": time}),
                    format!("!!! {reason}"),
                );
                if fatal {
                    return Err(reason);
                }
            }
            _ => {}
        }
    }
    // OFF-18: a new offline option set for every departure, if asked for.
    if let Some(departure) = departure.as_mut() {
        let said = departure.announce(&store, &mut client).await;
        emit(
            json!({"event": "offline_options_published", "text": said, "time": clock_time()}),
            said,
        );
    }
    let _ = tokio::time::timeout(Duration::from_secs(5), client.disconnect()).await;
    Ok(())
}

/// The `established` event of `listen --json`: what was agreed and how the
/// peer is authenticated. `sas` is null in the 3-message flow (no SAS).
fn established_json(session: &SessionId, info: &SessionInfo, time: &str) -> Value {
    let stanzas: Vec<&str> = info.stanzas.iter().map(|k| k.name()).collect();
    let sas = (!info.three_message && !info.sas.is_empty()).then_some(info.sas.as_str());
    json!({
        "event": "established",
        "peer": session.peer.as_str(),
        "thread": session.thread,
        "flow": if info.three_message { "3-message" } else { "4-message" },
        "offline": info.offline,
        "group": info.group.id(),
        "cipher": info.cipher.name(),
        "hash": info.hash.name(),
        "compression": info.compression.name(),
        "sas": sas,
        "sas_reminder": info.sas_reminder,
        "peer_key": info.peer_key.as_ref().map(key_json),
        "authenticated_by_retained_secret": info.authenticated_by_retained_secret,
        "retained_chain_verified": info.retained_chain_verified,
        "retained_secret_unproven": info.retained_secret_unproven,
        "broken_chain": info.broken_chain.as_ref().map(|b| json!({
            "chain_verified": b.chain_verified,
            "clients": b.clients,
        })),
        "verified": info.is_verified(),
        "other_secret_used": info.other_secret_used,
        "stanzas": stanzas,
        "logging": info.logging.value(),
        "disclosure": info.disclosure.value(),
        "we_initiated": info.we_initiated,
        "time": time,
    })
}

/// Keeps a message in the local history when its session may be logged;
/// a failure is said on stderr (the message itself was handled).
pub(crate) fn keep(
    store: &esession_store::Store,
    settings: &Settings,
    client: &esession_xmpp::EsessionClient,
    (session, info): (&esession::SessionId, Option<&esession::SessionInfo>),
    outgoing: bool,
    body: &str,
) {
    let kept = settings
        .account()
        .and_then(|account| store.account(&account).map_err(|e| e.to_string()))
        .and_then(|account| {
            crate::history::record(&account, client, (session, info), outgoing, body)
        });
    if let Err(e) = kept {
        eprintln!("!!! {e}");
    }
}

/// The `server_archive` event: what the server archives (issue 14).
fn archive_json(archive: &esession_xmpp::archive::ServerArchive, time: &str) -> Value {
    use esession_xmpp::archive::ServerArchive;
    let kind = match archive {
        ServerArchive::None => "none",
        ServerArchive::Mam => "mam",
        ServerArchive::Xep0136 => "xep-0136",
        ServerArchive::Refused(_) => "refused",
        _ => "unknown",
    };
    json!({
        "event": "server_archive",
        "archive": kind,
        "off_the_record_possible": archive.off_the_record_possible(),
        "text": archive.describe(),
        "time": time,
    })
}

/// A contact's public key in JSON: fingerprint as lower-case hex.
fn key_json(key: &PeerKeyInfo) -> Value {
    json!({
        "fingerprint": hex::encode(&key.fingerprint),
        "petname": key.petname,
        "algorithm": key.algorithm.uri(),
        "verified": key.verified,
    })
}

fn hex_list(fingerprints: &[Vec<u8>]) -> Vec<String> {
    fingerprints.iter().map(hex::encode).collect()
}

/// A security alert as a JSON object: `kind`, its facts (fingerprints as
/// lower-case hex) and `message`, the text shown to a person.
fn alert_json(peer: &str, alert: &SecurityAlert) -> Value {
    let mut value = match alert {
        SecurityAlert::DisclosureNotNever(disclosure) => {
            json!({"kind": "disclosure_not_never", "disclosure": disclosure.value()})
        }
        SecurityAlert::NoConfidentiality => json!({"kind": "no_confidentiality"}),
        SecurityAlert::NewPeerKey(key) => json!({"kind": "new_peer_key", "key": key_json(key)}),
        SecurityAlert::PeerKeyChanged {
            key,
            previous_fingerprints,
        } => json!({
            "kind": "peer_key_changed",
            "key": key_json(key),
            "previous_fingerprints": hex_list(previous_fingerprints),
        }),
        SecurityAlert::PeerKeySeenWithOtherJid { key, other_jids } => json!({
            "kind": "peer_key_seen_with_other_jid",
            "key": key_json(key),
            "other_jids": other_jids,
        }),
        SecurityAlert::PeerKeyMissing {
            previous_fingerprints,
        } => json!({
            "kind": "peer_key_missing",
            "previous_fingerprints": hex_list(previous_fingerprints),
        }),
        SecurityAlert::UnverifiedPeerKey(key) => {
            json!({"kind": "unverified_peer_key", "key": key_json(key)})
        }
        SecurityAlert::UnknownKeyFingerprint { fingerprint } => json!({
            "kind": "unknown_key_fingerprint",
            "fingerprint": hex::encode(fingerprint),
        }),
        SecurityAlert::RetainedSecretNotProven(broken) => json!({
            "kind": "retained_secret_not_proven",
            "chain_verified": broken.chain_verified,
            "clients": broken.clients,
        }),
        _ => json!({"kind": "other"}),
    };
    value["message"] = Value::String(present::alert(peer, alert));
    value
}

/// A negotiation failure as a JSON object: `kind`, the stanza error
/// `condition` by its XML name (null when there is none), the `fields` the
/// error named, and `message`, the text shown to a person.
fn error_json(peer: &str, error: &Error) -> Value {
    let none: &[String] = &[];
    let (kind, condition, fields) = match error {
        Error::Declined => ("declined", None, none),
        Error::Timeout => ("timeout", None, none),
        Error::PeerError { condition, fields } => (
            "peer_error",
            condition.map(|c| c.element()),
            fields.as_slice(),
        ),
        Error::Refused { condition, fields } => {
            ("refused", Some(condition.element()), fields.as_slice())
        }
        Error::Decrypt => ("decrypt", None, none),
        Error::UnknownSession => ("unknown_session", None, none),
        Error::NotEstablished => ("not_established", None, none),
        Error::SessionEnded => ("session_ended", None, none),
        Error::RekeyTooSoon => ("rekey_too_soon", None, none),
        Error::KeysExhausted => ("keys_exhausted", None, none),
        Error::StanzaKindNotAgreed(_) => ("stanza_kind_not_agreed", None, none),
        Error::AmbiguousSession => ("ambiguous_session", None, none),
        Error::InvalidInput(_) => ("invalid_input", None, none),
        Error::ConnectionReset => ("connection_reset", None, none),
        _ => ("other", None, none),
    };
    json!({
        "kind": kind,
        "condition": condition,
        "fields": fields,
        "message": present::failure(peer, error),
    })
}

/// Why a session ended, as a stable name for scripts.
#[cfg(test)]
mod tests {
    #![allow(
        clippy::unwrap_used,
        clippy::expect_used,
        clippy::panic,
        reason = "test code"
    )]

    use esession::ssn::ErrorCondition;
    use esession::{FixedClock, MemoryTrustStore, SessionManager, SystemRandomness};

    use super::*;

    const ALICE: &str = "alice@example.org/pda";
    const BOB: &str = "bob@example.com/laptop";

    fn manager(jid: &str) -> SessionManager {
        SessionManager::new(
            Config {
                own_jid: Some(jid.to_owned()),
                ..Config::default()
            },
            Box::new(SystemRandomness::new(crate::rng::os_seeded().unwrap())),
            Box::new(MemoryTrustStore::new()),
            Box::new(FixedClock(1_700_000_000)),
        )
        .unwrap()
    }

    /// Alice's view of a real 4-message negotiation with Bob, in memory.
    fn negotiated() -> (SessionId, SessionInfo) {
        let mut alice = manager(ALICE);
        let mut bob = manager(BOB);
        let (_, offer) = alice.start_session(BOB).unwrap();
        let mut to_bob = offer.stanzas;
        let mut alice_events = offer.events;
        for _ in 0..4 {
            let mut to_alice = Vec::new();
            for stanza in to_bob.drain(..) {
                to_alice.extend(bob.handle_stanza(&stanza).stanzas);
            }
            for stanza in to_alice {
                let out = alice.handle_stanza(&stanza);
                to_bob.extend(out.stanzas);
                alice_events.extend(out.events);
            }
        }
        alice_events
            .into_iter()
            .find_map(|e| match e {
                Event::Established { session, info } => Some((session, info)),
                _ => None,
            })
            .expect("Alice established a session")
    }

    fn key(petname: Option<&str>, verified: bool) -> PeerKeyInfo {
        PeerKeyInfo {
            petname: petname.map(str::to_owned),
            fingerprint: vec![0xab; 32],
            algorithm: esession_crypto::SignatureAlgorithm::RsaSha256,
            verified,
        }
    }

    /// No Rust Debug rendering anywhere in an event.
    fn assert_no_debug(value: &Value) {
        let text = value.to_string();
        for debug in [
            "Some(",
            "None",
            "Group",
            "Aes",
            "Sha256",
            "[171",
            "PeerKeyInfo",
        ] {
            assert!(!text.contains(debug), "{debug} in {text}");
        }
    }

    #[test]
    fn established_in_four_messages_carries_the_agreement_and_the_sas() {
        let (session, info) = negotiated();
        let value = established_json(&session, &info, "12:00:00Z");
        assert_eq!(value["event"], "established");
        assert_eq!(value["peer"], BOB);
        assert_eq!(value["thread"], session.thread.as_str());
        assert_eq!(value["flow"], "4-message");
        assert_eq!(value["group"], info.group.id());
        assert_eq!(value["cipher"], "aes128-ctr");
        assert_eq!(value["hash"], "sha256");
        assert_eq!(value["compression"], "none");
        assert_eq!(value["sas"].as_str().map(str::len), Some(5));
        assert_eq!(value["sas"], info.sas.as_str());
        assert_eq!(value["peer_key"], Value::Null);
        assert_eq!(value["authenticated_by_retained_secret"], false);
        assert_eq!(value["retained_chain_verified"], false);
        assert_eq!(value["stanzas"], json!(["message"]));
        assert_eq!(value["logging"], "may");
        assert_eq!(value["disclosure"], "never");
        assert_eq!(value["we_initiated"], true);
        assert_eq!(value["time"], "12:00:00Z");
        assert_no_debug(&value);
    }

    #[test]
    fn established_in_three_messages_has_no_sas_and_shows_the_key() {
        let (session, mut info) = negotiated();
        info.three_message = true;
        info.sas = String::new();
        info.peer_key = Some(key(Some("Bob's laptop"), true));
        let value = established_json(&session, &info, "12:00:00Z");
        assert_eq!(value["flow"], "3-message");
        assert!(value["sas"].is_null(), "{value}");
        assert_eq!(
            value["peer_key"],
            json!({
                "fingerprint": "ab".repeat(32),
                "petname": "Bob's laptop",
                "algorithm": "http://www.w3.org/2000/09/xmldsig#rsa-sha256",
                "verified": true,
            })
        );
        assert_no_debug(&value);
        // A 4-message session never shows an empty SAS either.
        info.three_message = false;
        assert!(established_json(&session, &info, "t")["sas"].is_null());
    }

    #[test]
    fn alerts_are_objects_with_kind_hex_fingerprints_and_a_message() {
        let alert = SecurityAlert::PeerKeyChanged {
            key: key(None, false),
            previous_fingerprints: vec![vec![1; 32]],
        };
        let mut value = alert_json(BOB, &alert);
        let message = value["message"].take();
        assert_eq!(
            value,
            json!({
                "kind": "peer_key_changed",
                "key": {
                    "fingerprint": "ab".repeat(32),
                    "petname": null,
                    "algorithm": "http://www.w3.org/2000/09/xmldsig#rsa-sha256",
                    "verified": false,
                },
                "previous_fingerprints": ["01".repeat(32)],
                "message": null,
            })
        );
        assert_eq!(message, present::alert(BOB, &alert).as_str());
        assert!(
            message
                .as_str()
                .unwrap()
                .contains("!!! WARNING: THE PUBLIC KEY OF bob@example.com/laptop HAS CHANGED")
        );
        let unknown = alert_json(
            BOB,
            &SecurityAlert::UnknownKeyFingerprint {
                fingerprint: vec![0xcd; 4],
            },
        );
        assert_eq!(unknown["kind"], "unknown_key_fingerprint");
        assert_eq!(unknown["fingerprint"], "cdcdcdcd");
        let disclosure = alert_json(
            BOB,
            &SecurityAlert::DisclosureNotNever(esession::ssn::Disclosure::Enabled),
        );
        assert_eq!(disclosure["kind"], "disclosure_not_never");
        assert_eq!(disclosure["disclosure"], "enabled");
        for value in [unknown, disclosure] {
            assert_no_debug(&value);
        }
    }

    #[test]
    fn errors_name_the_xml_condition() {
        let value = error_json(
            BOB,
            &Error::PeerError {
                condition: Some(ErrorCondition::FeatureNotImplemented),
                fields: vec!["crypt_algs".to_owned()],
            },
        );
        assert_eq!(
            value,
            json!({
                "kind": "peer_error",
                "condition": "feature-not-implemented",
                "fields": ["crypt_algs"],
                "message": "bob@example.com/laptop refused the negotiation \
                            (feature-not-implemented on crypt_algs).",
            })
        );
        let refused = error_json(
            BOB,
            &Error::Refused {
                condition: ErrorCondition::NotAcceptable,
                fields: vec![],
            },
        );
        assert_eq!(
            refused,
            json!({
                "kind": "refused",
                "condition": "not-acceptable",
                "fields": [],
                "message": "We refused bob@example.com/laptop's negotiation message (not-acceptable).",
            })
        );
        let unknown = error_json(
            BOB,
            &Error::PeerError {
                condition: None,
                fields: vec![],
            },
        );
        assert_eq!(unknown["condition"], Value::Null);
        assert_eq!(
            unknown["message"],
            "bob@example.com/laptop refused the negotiation (no known error condition)."
        );
        let timeout = error_json(BOB, &Error::Timeout);
        assert_eq!(timeout["kind"], "timeout");
        assert_eq!(timeout["condition"], Value::Null);
        assert!(
            timeout["message"]
                .as_str()
                .unwrap()
                .starts_with("bob@example.com/laptop did not answer")
        );
    }

    #[test]
    fn terminations_have_stable_names() {
        use esession::TerminationReason;
        assert_eq!(
            TerminationReason::PeerUnavailable.name(),
            "peer_unavailable"
        );
        assert_eq!(TerminationReason::LocalRequest.name(), "local_request");
        assert_eq!(
            TerminationReason::IntegrityFailure.name(),
            "integrity_failure"
        );
    }
}
