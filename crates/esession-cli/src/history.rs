//! The local history (issue 14): messages of sessions that may be logged
//! (`logging=may`), sealed in the trust store; `esession history` shows or
//! forgets them, `chat` shows the last few when it starts. Off-the-record
//! sessions are never kept (ENC-21): the store refuses them.

use chrono::TimeZone;
use esession::{SessionId, SessionInfo};
use esession_store::{AccountStore, HistoryEntry};
use esession_xmpp::EsessionClient;
use serde_json::json;

use crate::account::{now, open_store};
use crate::settings::Settings;
use crate::trust_keys::date_time;

/// How many messages `chat` shows on start.
pub(crate) const CHAT_LINES: usize = 10;

/// Keeps a message of `session` in the history if its session may be logged.
/// A failure is the caller's to report: the message itself was handled.
/// `known` is what the session agreed when the caller kept it (a one-shot
/// offline session is gone by the time its message is shown); otherwise the
/// session is looked up.
pub(crate) fn record(
    account: &AccountStore,
    client: &EsessionClient,
    (session, known): (&SessionId, Option<&SessionInfo>),
    outgoing: bool,
    body: &str,
) -> Result<(), String> {
    let Some(info) = known.or_else(|| client.manager().session_info(session)) else {
        return Ok(());
    };
    account
        .record_message(session, info, outgoing, now(), body)
        .map(|_| ())
        .map_err(|e| format!("this message could not be kept in your history ({e})"))
}

/// One line of history for a person: date and time in `zone`, who, whether
/// the session was verified, the text.
pub(crate) fn line<Tz: TimeZone>(entry: &HistoryEntry, zone: &Tz) -> String
where
    Tz::Offset: std::fmt::Display,
{
    let who = if entry.outgoing {
        format!("me to {}", entry.peer)
    } else {
        entry.peer.clone()
    };
    let trust = if entry.verified {
        "verified"
    } else {
        "NOT verified"
    };
    format!(
        "[{}] {who} [encrypted, {trust}]: {}",
        date_time(entry.time, zone),
        entry.body
    )
}

/// `esession history CONTACT [--since] [--last N] [--json]`, or `--forget`.
pub(crate) fn run(
    settings: &Settings,
    contact: &str,
    since: Option<&str>,
    last: Option<usize>,
    json_output: bool,
    forget: bool,
) -> Result<(), String> {
    let since = since.map(parse_since).transpose()?.unwrap_or(0);
    let store = open_store(settings)?;
    let account_jid = settings.account()?;
    let account = store.account(&account_jid).map_err(|e| e.to_string())?;
    if forget {
        let deleted = account
            .forget_history(contact)
            .map_err(|e| format!("forgetting the history with {contact}: {e}"))?;
        eprintln!(
            "Deleted {deleted} message(s) with {contact}, and every copy the trust store's files still held."
        );
        return Ok(());
    }
    let history = account
        .history(contact, since, last)
        .map_err(|e| format!("the history with {contact} could not be read: {e}"))?;
    for entry in &history.entries {
        if json_output {
            println!(
                "{}",
                json!({
                    "peer": entry.peer,
                    "thread": entry.thread,
                    "direction": if entry.outgoing { "sent" } else { "received" },
                    "time": entry.time,
                    "verified": entry.verified,
                    "body": entry.body,
                })
            );
        } else {
            println!("{}", line(entry, &chrono::Local));
        }
    }
    if history.entries.is_empty() && !json_output {
        eprintln!(
            "No messages kept with {contact}. Only sessions that may be logged are kept; \
             off-the-record ones never are."
        );
    }
    if history.unreadable > 0 {
        eprintln!(
            "!!! {} message(s) could not be read: the trust store was damaged or edited behind its back. \
             Run `esession trust check` (or see docs/SECURITY.md).",
            history.unreadable
        );
    }
    Ok(())
}

/// `--since`: a date (YYYY-MM-DD, local midnight) or Unix seconds.
fn parse_since(value: &str) -> Result<u64, String> {
    if let Ok(secs) = value.parse::<u64>() {
        return Ok(secs);
    }
    chrono::NaiveDate::parse_from_str(value, "%Y-%m-%d")
        .ok()
        .and_then(|d| d.and_hms_opt(0, 0, 0))
        .and_then(|t| t.and_local_timezone(chrono::Local).earliest())
        .and_then(|t| u64::try_from(t.timestamp()).ok())
        .ok_or_else(|| format!("--since {value:?}: give a date as YYYY-MM-DD, or Unix seconds"))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, reason = "test code")]

    use super::*;

    #[test]
    fn since_reads_dates_and_seconds() {
        assert_eq!(parse_since("1780000000"), Ok(1_780_000_000));
        assert!(parse_since("2026-12-05").unwrap() > 1_780_000_000);
        assert!(parse_since("yesterday").unwrap_err().contains("YYYY-MM-DD"));
    }

    #[test]
    fn a_line_says_who_when_and_whether_verified() {
        let entry = HistoryEntry {
            contact: "bob@example.org".to_owned(),
            peer: "bob@example.org/pc".to_owned(),
            thread: "t".to_owned(),
            outgoing: true,
            time: 1_780_000_000,
            verified: false,
            body: "hi".to_owned(),
        };
        let text = line(&entry, &chrono::Utc);
        assert_eq!(
            text,
            "[2026-05-28 20:26 UTC+00:00] me to bob@example.org/pc [encrypted, NOT verified]: hi"
        );
    }
}
