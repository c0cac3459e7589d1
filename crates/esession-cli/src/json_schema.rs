//! The JSON events of `listen --json` and `serve`, as data: every event
//! name with the fields it always carries and those it may carry. docs/JSON.md
//! documents the same (a test keeps the two in step), and the Prosody tests
//! check every event they see against it (they include this file).

#![cfg_attr(
    not(test),
    allow(
        dead_code,
        reason = "the binary uses the version; the tests use the rest"
    )
)]

/// The version of the JSON interface (docs/JSON.md); it changes only when an
/// event or a command changes incompatibly.
pub(crate) const SCHEMA_VERSION: u32 = 1;

/// One event kind: its name, the fields always present (a value may be
/// null where docs/JSON.md says so) and the fields present in some cases.
pub(crate) struct EventKind {
    pub(crate) name: &'static str,
    pub(crate) always: &'static [&'static str],
    pub(crate) sometimes: &'static [&'static str],
}

const fn kind(
    name: &'static str,
    always: &'static [&'static str],
    sometimes: &'static [&'static str],
) -> EventKind {
    EventKind {
        name,
        always,
        sometimes,
    }
}

/// Every event, in the order of docs/JSON.md.
pub(crate) const EVENTS: &[EventKind] = &[
    kind("ready", &["schema", "jid"], &[]),
    kind(
        "ok",
        &["command", "id"],
        &["peer", "thread", "receipt", "policy", "sessions"],
    ),
    kind("error", &["command", "id", "message"], &[]),
    kind(
        "server_archive",
        &["archive", "off_the_record_possible", "text"],
        &[],
    ),
    kind(
        "established",
        &[
            "peer",
            "thread",
            "flow",
            "offline",
            "group",
            "cipher",
            "hash",
            "compression",
            "sas",
            "sas_reminder",
            "peer_key",
            "authenticated_by_retained_secret",
            "retained_chain_verified",
            "retained_secret_unproven",
            "broken_chain",
            "verified",
            "other_secret_used",
            "stanzas",
            "logging",
            "disclosure",
            "we_initiated",
        ],
        &[],
    ),
    kind(
        "message",
        &["peer", "body", "encrypted"],
        &["thread", "offline", "written"],
    ),
    kind(
        "presence",
        &["peer", "type", "show", "status", "encrypted"],
        &[],
    ),
    kind("sent", &["peer", "thread", "receipt"], &[]),
    kind("sent_offline", &["peer", "thread", "signer"], &[]),
    kind("delivered", &["peer", "thread", "id"], &[]),
    kind("not_delivered", &["peer", "thread", "id"], &[]),
    kind(
        "retained_secret_proven",
        &["peer", "thread", "chain_verified"],
        &[],
    ),
    kind("alert", &[], &["peer", "thread", "alert", "text"]),
    kind("negotiation_failed", &["peer", "thread", "error"], &[]),
    kind("terminated", &["peer", "thread", "reason", "message"], &[]),
    kind("declined", &["peer"], &[]),
    kind("ignored", &["peer"], &[]),
    kind("unknown_session", &["peer", "thread", "answered"], &[]),
    kind("offline_options_held", &["sets"], &[]),
    kind(
        "offline_message_rejected",
        &["peer", "thread", "reason"],
        &[],
    ),
    kind("offline_options_published", &["text"], &[]),
    kind(
        "off_the_record_failed",
        &["peer", "reason", "sessions_ended"],
        &[],
    ),
    kind("archive_preference_not_restored", &["peer", "reason"], &[]),
    kind("subscription_request", &["peer"], &[]),
    kind("notice", &["text"], &[]),
    kind("disconnected", &["reason"], &[]),
    kind("resumed", &[], &[]),
    kind("reconnected", &["jid"], &[]),
];

/// Checks one event against [`EVENTS`]: a known kind, `event` and `time`,
/// every field it always has, nothing undocumented. The error says what.
pub(crate) fn check(event: &serde_json::Value) -> Result<(), String> {
    let object = event
        .as_object()
        .ok_or_else(|| format!("not an object: {event}"))?;
    let name = object
        .get("event")
        .and_then(|e| e.as_str())
        .ok_or_else(|| format!("no \"event\": {event}"))?;
    let kind = EVENTS
        .iter()
        .find(|k| k.name == name)
        .ok_or_else(|| format!("undocumented event \"{name}\": {event}"))?;
    if !object.contains_key("time") {
        return Err(format!("no \"time\": {event}"));
    }
    if let Some(missing) = kind.always.iter().find(|f| !object.contains_key(**f)) {
        return Err(format!("\"{name}\" without \"{missing}\": {event}"));
    }
    let documented = |field: &str| {
        field == "event"
            || field == "time"
            || kind.always.contains(&field)
            || kind.sometimes.contains(&field)
    };
    if let Some(extra) = object.keys().find(|f| !documented(f)) {
        return Err(format!("\"{name}\" with undocumented \"{extra}\": {event}"));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, reason = "test code")]

    use super::*;

    /// docs/JSON.md documents every event and field the code emits: a
    /// `### name` heading per event, each field named in its section.
    #[test]
    fn docs_json_md_documents_every_event_and_field() {
        let doc = include_str!("../../../docs/JSON.md");
        assert!(
            doc.contains(&format!("Schema version: {SCHEMA_VERSION}")),
            "docs/JSON.md names the schema version"
        );
        for kind in EVENTS {
            let heading = format!("\n### `{}`\n", kind.name);
            let start = doc
                .find(&heading)
                .unwrap_or_else(|| panic!("docs/JSON.md has no section {heading:?}"));
            let rest = &doc[start + heading.len()..];
            let section = &rest[..rest.find("\n### ").unwrap_or(rest.len())];
            for field in kind.always.iter().chain(kind.sometimes) {
                assert!(
                    section.contains(&format!("`{field}`")),
                    "docs/JSON.md: `{field}` of `{}` is not documented",
                    kind.name
                );
            }
        }
    }

    #[test]
    fn the_check_catches_what_is_wrong() {
        let ok = serde_json::json!({"event": "declined", "peer": "a@b", "time": "10:00:00Z"});
        assert_eq!(check(&ok), Ok(()));
        let unknown = serde_json::json!({"event": "surprise", "time": "t"});
        assert!(check(&unknown).unwrap_err().contains("undocumented event"));
        let missing = serde_json::json!({"event": "declined", "time": "t"});
        assert!(check(&missing).unwrap_err().contains("without \"peer\""));
        let extra = serde_json::json!({"event": "declined", "peer": "a", "x": 1, "time": "t"});
        assert!(check(&extra).unwrap_err().contains("undocumented \"x\""));
    }
}
