//! `esession serve`: JSON-lines commands on standard input for a program
//! that drives us in either role (issue 15). The events are `listen
//! --json`'s (the loop is shared, see `scripted::listen`); each command gets
//! one answer, `ok` or `error`, echoing its `id` when it has one. The schema
//! is docs/JSON.md, version [`SCHEMA_VERSION`].

use esession::{OtrPolicy, SessionId};
use esession_crypto::SecretBytes;
use esession_store::Store;
use esession_xmpp::EsessionClient;
use serde_json::{Value, json};
use tokio::sync::mpsc;
use zeroize::Zeroize as _;

use crate::account::clock_time;
use crate::settings::Settings;

pub(crate) use crate::json_schema::SCHEMA_VERSION;

/// What `serve --help` says about the commands.
pub(crate) const COMMANDS_HELP: &str = "\
Commands, one JSON object per line, each with \"command\" and an optional \"id\" echoed in the \
answer. A session is named by \"peer\" (bare or full JID; the one established session with it) \
or \"thread\":
{\"command\": \"start\", \"peer\": JID}    offer a session (answer: thread)
{\"command\": \"send\", \"peer\"|\"thread\": ..., \"body\": TEXT}    encrypted message (answer: the \
receipt id; `delivered` follows)
{\"command\": \"verify\"|\"distrust\"|\"rekey\"|\"terminate\", \"peer\"|\"thread\": ...}
{\"command\": \"secret\", \"peer\": BARE_JID, \"secret\": TEXT}    the other shared secret for the \
next sessions (empty: removed)
{\"command\": \"approve\", \"peer\": BARE_JID}    let the contact see our presence
{\"command\": \"archiving\", \"peer\": BARE_JID (optional), \"policy\": require|prefer|...}
{\"command\": \"status\"}    the established sessions
{\"command\": \"quit\"}    terminate every session and exit 0 (so do EOF, SIGINT, SIGTERM)
Answers: {\"event\": \"ok\", \"command\": ..., \"id\": ...} with the command's results, or \
{\"event\": \"error\", \"command\": ..., \"id\": ..., \"message\": ...}. See docs/JSON.md.";

/// The first event of `serve`: who we are and which schema we speak.
pub(crate) fn ready_json(client: &EsessionClient, time: &str) -> Value {
    json!({
        "event": "ready",
        "schema": SCHEMA_VERSION,
        "jid": client.own_jid(),
        "time": time,
    })
}

/// A Unix signal as a stream (tokio's handler, registered at once).
pub(crate) fn signal(
    kind: tokio::signal::unix::SignalKind,
) -> Result<tokio::signal::unix::Signal, String> {
    tokio::signal::unix::signal(kind).map_err(|e| format!("cannot watch for a signal: {e}"))
}

/// Standard input, line by line, read on a thread of its own (a blocking
/// read must not hold the runtime, nor keep the process alive at exit).
pub(crate) fn stdin_lines() -> mpsc::UnboundedReceiver<String> {
    use std::io::BufRead as _;
    let (tx, rx) = mpsc::unbounded_channel();
    std::thread::spawn(move || {
        let mut input = std::io::stdin().lock();
        let mut bytes = Vec::new();
        loop {
            bytes.clear();
            match input.read_until(b'\n', &mut bytes) {
                Ok(0) => break,
                // A line that is not UTF-8 is answered `error` like any
                // other bad line; it does not end the input.
                Ok(_) => {
                    let line = String::from_utf8_lossy(&bytes).trim_end().to_owned();
                    bytes.zeroize();
                    if tx.send(line).is_err() {
                        break;
                    }
                }
                Err(e) => {
                    eprintln!("esession serve: standard input could not be read ({e}); leaving");
                    break;
                }
            }
        }
    });
    rx
}

/// The next command line; `None` at the end of input. Without input (plain
/// `listen`) it never completes.
pub(crate) async fn next_line(
    input: &mut Option<mpsc::UnboundedReceiver<String>>,
) -> Option<String> {
    match input {
        Some(rx) => loop {
            let line = rx.recv().await?;
            if !line.trim().is_empty() {
                return Some(line);
            }
        },
        None => std::future::pending().await,
    }
}

/// Carries out one command line: the answer (JSON, and the same for a
/// person), and whether to quit.
pub(crate) async fn command(
    client: &mut EsessionClient,
    store: &Store,
    settings: &Settings,
    line: &str,
) -> (Value, String, bool) {
    let parsed: Result<Value, _> = serde_json::from_str(line);
    let (mut request, name, id) = match parsed {
        Ok(request @ Value::Object(_)) => {
            let name = request["command"].as_str().unwrap_or_default().to_owned();
            let id = request.get("id").cloned().unwrap_or(Value::Null);
            (request, name, id)
        }
        _ => {
            let message = "not a JSON object: each line must be one command object".to_owned();
            return (error(&Value::Null, "", &message), message, false);
        }
    };
    let result = run(client, store, settings, &name, &mut request).await;
    let quit = name == "quit" && result.is_ok();
    match result {
        Ok(mut fields) => {
            fields.insert("event".to_owned(), json!("ok"));
            fields.insert("command".to_owned(), json!(name));
            fields.insert("id".to_owned(), id);
            fields.insert("time".to_owned(), json!(clock_time()));
            let text = format!("*** {name}: done");
            (Value::Object(fields), text, quit)
        }
        Err(message) => {
            let text = format!("!!! {name}: {message}");
            (error(&id, &name, &message), text, quit)
        }
    }
}

fn error(id: &Value, name: &str, message: &str) -> Value {
    json!({"event": "error", "command": name, "id": id, "message": message, "time": clock_time()})
}

type Fields = serde_json::Map<String, Value>;

async fn run(
    client: &mut EsessionClient,
    store: &Store,
    settings: &Settings,
    name: &str,
    request: &mut Value,
) -> Result<Fields, String> {
    for field in ["peer", "thread", "body", "secret", "policy"] {
        if request.get(field).is_some_and(|v| !v.is_string()) {
            return Err(format!("\"{field}\" must be a string"));
        }
    }
    let text = |request: &Value, field: &str| -> Result<String, String> {
        request[field]
            .as_str()
            .map(str::to_owned)
            .ok_or_else(|| format!("\"{field}\" (a string) is missing"))
    };
    let mut out = Fields::new();
    match name {
        "start" => {
            let peer = settings.check_contact(&text(request, "peer")?)?;
            let session = client
                .start_session(&peer)
                .await
                .map_err(|e| e.to_string())?;
            out.insert("peer".to_owned(), json!(session.peer.as_str()));
            out.insert("thread".to_owned(), json!(session.thread));
        }
        "send" => {
            let session = session_of(client, request)?;
            let body = text(request, "body")?;
            let receipt = client
                .send_text_with_receipt(&session, &body)
                .await
                .map_err(|e| e.to_string())?;
            crate::scripted::keep(store, settings, client, (&session, None), true, &body);
            name_session(&mut out, &session);
            out.insert("receipt".to_owned(), json!(receipt));
        }
        "verify" => {
            let session = session_of(client, request)?;
            client.confirm_sas(&session).map_err(|e| e.to_string())?;
            name_session(&mut out, &session);
        }
        "distrust" | "rekey" | "terminate" => {
            let session = session_of(client, request)?;
            let done = match name {
                "distrust" => client.distrust(&session).await,
                "rekey" => client.rekey(&session).await,
                _ => client.terminate(&session).await,
            };
            done.map_err(|e| e.to_string())?;
            name_session(&mut out, &session);
        }
        "secret" => {
            let checked = settings.check_contact(&text(request, "peer")?)?;
            let peer = crate::profile::bare(&checked).to_owned();
            // Taken out of the request and wiped after use.
            let secret = match request.get_mut("secret").map(Value::take) {
                Some(Value::String(secret)) => zeroize::Zeroizing::new(secret),
                _ => return Err("\"secret\" (a string) is missing".to_owned()),
            };
            let account = settings.account()?;
            let store_error = |e: esession_store::StoreError| e.to_string();
            if secret.is_empty() {
                store
                    .clear_other_secret(&account, &peer)
                    .map_err(store_error)?;
            } else {
                store
                    .account(&account)
                    .and_then(|a| {
                        a.set_other_secret(&peer, SecretBytes::from_slice(secret.as_bytes()))
                    })
                    .map_err(store_error)?;
            }
            out.insert("peer".to_owned(), json!(peer));
        }
        "approve" => {
            let checked = settings.check_contact(&text(request, "peer")?)?;
            let peer = crate::profile::bare(&checked).to_owned();
            let jid = jid::BareJid::new(&peer).map_err(|_| format!("{peer} is not a JID"))?;
            client
                .approve_subscription(&jid)
                .await
                .map_err(|e| e.to_string())?;
            out.insert("peer".to_owned(), json!(peer));
        }
        "archiving" => {
            let value = text(request, "policy")?;
            let policy = OtrPolicy::from_value(&value).ok_or_else(|| {
                format!(
                    "\"{value}\" is not an archiving policy: use require, prefer, approve, concede, oppose or forbid"
                )
            })?;
            let peer = match request["peer"].as_str() {
                Some(peer) => Some(crate::profile::bare(&settings.check_contact(peer)?).to_owned()),
                None => None,
            };
            client.set_otr_policy(peer.as_deref(), policy).await;
            out.insert("policy".to_owned(), json!(policy.value()));
            out.insert("peer".to_owned(), json!(peer));
        }
        "status" => {
            let sessions: Vec<Value> = client
                .manager()
                .established_sessions()
                .map(|(id, info)| {
                    json!({
                        "peer": id.peer.as_str(),
                        "thread": id.thread,
                        "verified": info.is_verified(),
                        "logging": info.logging.value(),
                        "sas": (!info.three_message && !info.sas.is_empty()).then_some(info.sas.as_str()),
                    })
                })
                .collect();
            out.insert("sessions".to_owned(), json!(sessions));
        }
        "quit" => {}
        "" => return Err("\"command\" (a string) is missing".to_owned()),
        other => {
            return Err(format!(
                "unknown command \"{other}\": start, send, verify, distrust, rekey, terminate, \
                 secret, approve, archiving, status or quit"
            ));
        }
    }
    Ok(out)
}

fn name_session(out: &mut Fields, session: &SessionId) {
    out.insert("peer".to_owned(), json!(session.peer.as_str()));
    out.insert("thread".to_owned(), json!(session.thread));
}

/// The established session a command names: by `thread`, or the one with
/// `peer` (a bare JID names any of its resources).
fn session_of(client: &EsessionClient, request: &Value) -> Result<SessionId, String> {
    let thread = request["thread"].as_str();
    let peer = match request["peer"].as_str() {
        Some(text) => Some(jid::Jid::new(text).map_err(|_| format!("\"{text}\" is not a JID"))?),
        None => None,
    };
    if thread.is_none() && peer.is_none() {
        return Err("name the session with \"peer\" or \"thread\"".to_owned());
    }
    let mut matches: Vec<SessionId> = client
        .manager()
        .established_sessions()
        .map(|(id, _)| id)
        .filter(|id| thread.is_none_or(|t| id.thread == t))
        .filter(|id| {
            // A full JID names that client (resources are case-sensitive);
            // a bare one any client of the contact (RFC 7622 normalized).
            peer.as_ref().is_none_or(|p| match p.resource() {
                Some(_) => id.peer == *p,
                None => id.contact() == p.to_bare(),
            })
        })
        .cloned()
        .collect();
    if matches.len() > 1 {
        return Err(format!(
            "{} established sessions match; name one by \"thread\"",
            matches.len()
        ));
    }
    matches
        .pop()
        .ok_or_else(|| "no established session matches; start one first (`start`)".to_owned())
}
