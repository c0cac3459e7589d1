//! Row tags (schema version 3, issue 11): every row that carries a trust
//! decision has a `tag` column holding HMAC-SHA256, under the row-tag key
//! derived from the data key, over the table name and every field of the row
//! (see [`crate::seal::row_tag_input`]). Each row type here says which fields
//! its tag covers; every read verifies the tag in constant time before
//! anything in the row is used, and every write stores a fresh tag in the same
//! transaction.
//!
//! | table | fields the tag covers |
//! |---|---|
//! | `retained_secrets` | id, account, peer, client, sealed secret, created, expires, verified |
//! | `peer_keys` | id, account, fingerprint, keyvalue, petname, verified, first_seen |
//! | `peer_key_jids` | key_id **and that key's account and fingerprint**, peer, first_seen, last_seen |
//! | `sas_states` | account, peer, client, state, updated |
//! | `contacts` | account, peer, profile |
//! | `delivered_messages` | account, peer, message_id |
//! | `meta` (row `retained_lifetime` only) | name, value |
//!
//! Row ids are covered where they are stable `INTEGER PRIMARY KEY`s that
//! other data refers to (`retained_secrets.id` is also in its secret's
//! associated data; `peer_keys.id` is what `peer_key_jids.key_id` points to).
//! The other tables' implicit rowids can change under `VACUUM`, so their tags
//! cover the natural key instead. `delivered_messages.seq` only orders the
//! trimming to the newest ids, so it is not covered.

use rusqlite::{Connection, Params, Row, params};

use crate::StoreError;
use crate::seal::{DataKey, Field};

/// How a JID, client name or other stored text is shown in a
/// [`StoreError::Tampered`] message: quoted and escaped (it comes from a file
/// someone changed, so it may hold control characters) and cut to a length
/// that keeps the message readable.
fn shown(text: &str) -> String {
    const MAX_CHARS: usize = 64;
    if text.chars().count() > MAX_CHARS {
        let cut: String = text.chars().take(MAX_CHARS).collect();
        format!("{cut:?}…")
    } else {
        format!("{text:?}")
    }
}

/// A row of a tagged table as stored, with its tag.
pub(crate) trait Tagged: Sized {
    /// The table, also the first field of the tag input.
    const TABLE: &'static str;
    /// The columns [`Tagged::from_row`] reads, in order.
    const COLUMNS: &'static str;
    /// The `FROM` clause (a join for `peer_key_jids`).
    const FROM: &'static str;
    /// Stores a tag: `?1` the tag, `?2` the row's rowid.
    const SET_TAG: &'static str;

    fn from_row(r: &Row<'_>) -> rusqlite::Result<Self>;
    fn rowid(&self) -> i64;
    fn stored_tag(&self) -> &[u8];
    /// Every field the tag covers, in a fixed order.
    fn fields(&self) -> Vec<Field<'_>>;
    /// Which row this is, for an error message (no secret data).
    fn describe(&self) -> String;

    /// Checks the stored tag ([`StoreError::Tampered`] if it does not match).
    fn verify(&self, key: &DataKey) -> Result<(), StoreError> {
        key.verify_row(Self::TABLE, &self.fields(), self.stored_tag(), &|| {
            format!("{}: {}", Self::TABLE, self.describe())
        })
    }

    /// The tag this row should have under `key`.
    fn tag(&self, key: &DataKey) -> Vec<u8> {
        key.row_tag(Self::TABLE, &self.fields())
    }

    /// Computes and stores this row's tag.
    fn store_tag(&self, conn: &Connection, key: &DataKey) -> Result<(), StoreError> {
        conn.execute(Self::SET_TAG, params![self.tag(key), self.rowid()])?;
        Ok(())
    }
}

/// The rows of `T` matching `filter` (SQL after `WHERE`/`ORDER BY`, may be
/// empty), each verified before it is returned.
pub(crate) fn select_verified<T: Tagged>(
    conn: &Connection,
    key: &DataKey,
    filter: &str,
    params: impl Params,
) -> Result<Vec<T>, StoreError> {
    let sql = format!("SELECT {} FROM {} {filter}", T::COLUMNS, T::FROM);
    let rows = conn
        .prepare_cached(&sql)?
        .query_map(params, T::from_row)?
        .collect::<Result<Vec<T>, _>>()?;
    for row in &rows {
        row.verify(key)?;
    }
    Ok(rows)
}

/// Visits every row of `T`: verifies it under `verify` and/or re-tags it
/// under `retag`. Returns how many rows there were.
fn visit_table<T: Tagged>(
    conn: &Connection,
    verify: Option<&DataKey>,
    retag: Option<&DataKey>,
) -> Result<usize, StoreError> {
    let sql = format!("SELECT {} FROM {}", T::COLUMNS, T::FROM);
    let rows = conn
        .prepare(&sql)?
        .query_map([], T::from_row)?
        .collect::<Result<Vec<T>, _>>()?;
    for row in &rows {
        if let Some(key) = verify {
            row.verify(key)?;
        }
        if let Some(key) = retag {
            row.store_tag(conn, key)?;
        }
    }
    Ok(rows.len())
}

/// Verifies (under `verify`) and/or re-tags (under `retag`) every tagged row
/// in the store, in the caller's transaction: [`crate::Store::check`] verifies,
/// the version-3 migration tags, [`crate::Store::rekey`] verifies under the old
/// key and then re-tags under the new one. The `retained_lifetime` row must
/// exist when verifying. Returns the number of rows visited.
pub(crate) fn visit_all(
    conn: &Connection,
    verify: Option<&DataKey>,
    retag: Option<&DataKey>,
) -> Result<usize, StoreError> {
    let mut n = 0;
    n += visit_table::<RetainedRow>(conn, verify, retag)?;
    n += visit_table::<PeerKeyRow>(conn, verify, retag)?;
    n += visit_table::<KeyJidRow>(conn, verify, retag)?;
    n += visit_table::<SasRow>(conn, verify, retag)?;
    n += visit_table::<ContactRow>(conn, verify, retag)?;
    n += visit_table::<DeliveredRow>(conn, verify, retag)?;
    let lifetime = visit_table::<LifetimeRow>(conn, verify, retag)?;
    if lifetime == 0 && verify.is_some() {
        return Err(LifetimeRow::missing());
    }
    Ok(n + lifetime)
}

// ---- the row types ------------------------------------------------------------

/// A row of `retained_secrets`.
pub(crate) struct RetainedRow {
    pub(crate) id: i64,
    pub(crate) account: String,
    pub(crate) peer: String,
    pub(crate) client: String,
    /// The sealed secret.
    pub(crate) secret: Vec<u8>,
    pub(crate) created: i64,
    pub(crate) expires: i64,
    pub(crate) verified: i64,
    pub(crate) tag: Vec<u8>,
}

impl Tagged for RetainedRow {
    const TABLE: &'static str = "retained_secrets";
    const COLUMNS: &'static str =
        "id, account, peer, client, secret, created, expires, verified, tag";
    const FROM: &'static str = "retained_secrets";
    const SET_TAG: &'static str = "UPDATE retained_secrets SET tag = ?1 WHERE id = ?2";

    fn from_row(r: &Row<'_>) -> rusqlite::Result<Self> {
        Ok(Self {
            id: r.get(0)?,
            account: r.get(1)?,
            peer: r.get(2)?,
            client: r.get(3)?,
            secret: r.get(4)?,
            created: r.get(5)?,
            expires: r.get(6)?,
            verified: r.get(7)?,
            tag: r.get(8)?,
        })
    }
    fn rowid(&self) -> i64 {
        self.id
    }
    fn stored_tag(&self) -> &[u8] {
        &self.tag
    }
    fn fields(&self) -> Vec<Field<'_>> {
        vec![
            Field::Int(self.id),
            Field::Text(&self.account),
            Field::Text(&self.peer),
            Field::Text(&self.client),
            Field::Blob(&self.secret),
            Field::Int(self.created),
            Field::Int(self.expires),
            Field::Int(self.verified),
        ]
    }
    fn describe(&self) -> String {
        format!(
            "retained secret {} of {} with {} (client {})",
            self.id,
            shown(&self.account),
            shown(&self.peer),
            shown(&self.client)
        )
    }
}

/// A row of `peer_keys`.
pub(crate) struct PeerKeyRow {
    pub(crate) id: i64,
    pub(crate) account: String,
    pub(crate) fingerprint: Vec<u8>,
    pub(crate) keyvalue: Vec<u8>,
    pub(crate) petname: Option<String>,
    pub(crate) verified: i64,
    pub(crate) first_seen: i64,
    pub(crate) tag: Vec<u8>,
}

impl Tagged for PeerKeyRow {
    const TABLE: &'static str = "peer_keys";
    const COLUMNS: &'static str =
        "id, account, fingerprint, keyvalue, petname, verified, first_seen, tag";
    const FROM: &'static str = "peer_keys";
    const SET_TAG: &'static str = "UPDATE peer_keys SET tag = ?1 WHERE id = ?2";

    fn from_row(r: &Row<'_>) -> rusqlite::Result<Self> {
        Ok(Self {
            id: r.get(0)?,
            account: r.get(1)?,
            fingerprint: r.get(2)?,
            keyvalue: r.get(3)?,
            petname: r.get(4)?,
            verified: r.get(5)?,
            first_seen: r.get(6)?,
            tag: r.get(7)?,
        })
    }
    fn rowid(&self) -> i64 {
        self.id
    }
    fn stored_tag(&self) -> &[u8] {
        &self.tag
    }
    fn fields(&self) -> Vec<Field<'_>> {
        vec![
            Field::Int(self.id),
            Field::Text(&self.account),
            Field::Blob(&self.fingerprint),
            Field::Blob(&self.keyvalue),
            Field::opt_text(self.petname.as_deref()),
            Field::Int(self.verified),
            Field::Int(self.first_seen),
        ]
    }
    fn describe(&self) -> String {
        format!("contact key {} of {}", self.id, shown(&self.account))
    }
}

/// A row of `peer_key_jids` (a key seen with a JID), with the account and
/// fingerprint of the key it points to: the tag binds the JID to that
/// fingerprint under that account, not just to a row id.
pub(crate) struct KeyJidRow {
    pub(crate) rowid: i64,
    pub(crate) key_id: i64,
    pub(crate) account: String,
    pub(crate) fingerprint: Vec<u8>,
    pub(crate) peer: String,
    pub(crate) first_seen: i64,
    pub(crate) last_seen: i64,
    pub(crate) tag: Vec<u8>,
}

impl Tagged for KeyJidRow {
    const TABLE: &'static str = "peer_key_jids";
    const COLUMNS: &'static str =
        "j.rowid, j.key_id, k.account, k.fingerprint, j.peer, j.first_seen, j.last_seen, j.tag";
    const FROM: &'static str = "peer_key_jids j JOIN peer_keys k ON k.id = j.key_id";
    const SET_TAG: &'static str = "UPDATE peer_key_jids SET tag = ?1 WHERE rowid = ?2";

    fn from_row(r: &Row<'_>) -> rusqlite::Result<Self> {
        Ok(Self {
            rowid: r.get(0)?,
            key_id: r.get(1)?,
            account: r.get(2)?,
            fingerprint: r.get(3)?,
            peer: r.get(4)?,
            first_seen: r.get(5)?,
            last_seen: r.get(6)?,
            tag: r.get(7)?,
        })
    }
    fn rowid(&self) -> i64 {
        self.rowid
    }
    fn stored_tag(&self) -> &[u8] {
        &self.tag
    }
    fn fields(&self) -> Vec<Field<'_>> {
        vec![
            Field::Int(self.key_id),
            Field::Text(&self.account),
            Field::Blob(&self.fingerprint),
            Field::Text(&self.peer),
            Field::Int(self.first_seen),
            Field::Int(self.last_seen),
        ]
    }
    fn describe(&self) -> String {
        format!(
            "contact key {} of {} seen with {}",
            self.key_id,
            shown(&self.account),
            shown(&self.peer)
        )
    }
}

/// A row of `sas_states`.
pub(crate) struct SasRow {
    pub(crate) rowid: i64,
    pub(crate) account: String,
    pub(crate) peer: String,
    pub(crate) client: String,
    pub(crate) state: String,
    pub(crate) updated: i64,
    pub(crate) tag: Vec<u8>,
}

impl Tagged for SasRow {
    const TABLE: &'static str = "sas_states";
    const COLUMNS: &'static str = "rowid, account, peer, client, state, updated, tag";
    const FROM: &'static str = "sas_states";
    const SET_TAG: &'static str = "UPDATE sas_states SET tag = ?1 WHERE rowid = ?2";

    fn from_row(r: &Row<'_>) -> rusqlite::Result<Self> {
        Ok(Self {
            rowid: r.get(0)?,
            account: r.get(1)?,
            peer: r.get(2)?,
            client: r.get(3)?,
            state: r.get(4)?,
            updated: r.get(5)?,
            tag: r.get(6)?,
        })
    }
    fn rowid(&self) -> i64 {
        self.rowid
    }
    fn stored_tag(&self) -> &[u8] {
        &self.tag
    }
    fn fields(&self) -> Vec<Field<'_>> {
        vec![
            Field::Text(&self.account),
            Field::Text(&self.peer),
            Field::Text(&self.client),
            Field::Text(&self.state),
            Field::Int(self.updated),
        ]
    }
    fn describe(&self) -> String {
        format!(
            "SAS state of {} (client {}) for {}",
            shown(&self.peer),
            shown(&self.client),
            shown(&self.account)
        )
    }
}

/// A row of `contacts` (per-contact settings).
pub(crate) struct ContactRow {
    pub(crate) rowid: i64,
    pub(crate) account: String,
    pub(crate) peer: String,
    pub(crate) profile: Option<String>,
    pub(crate) tag: Vec<u8>,
}

impl Tagged for ContactRow {
    const TABLE: &'static str = "contacts";
    const COLUMNS: &'static str = "rowid, account, peer, profile, tag";
    const FROM: &'static str = "contacts";
    const SET_TAG: &'static str = "UPDATE contacts SET tag = ?1 WHERE rowid = ?2";

    fn from_row(r: &Row<'_>) -> rusqlite::Result<Self> {
        Ok(Self {
            rowid: r.get(0)?,
            account: r.get(1)?,
            peer: r.get(2)?,
            profile: r.get(3)?,
            tag: r.get(4)?,
        })
    }
    fn rowid(&self) -> i64 {
        self.rowid
    }
    fn stored_tag(&self) -> &[u8] {
        &self.tag
    }
    fn fields(&self) -> Vec<Field<'_>> {
        vec![
            Field::Text(&self.account),
            Field::Text(&self.peer),
            Field::opt_text(self.profile.as_deref()),
        ]
    }
    fn describe(&self) -> String {
        format!(
            "settings of {} for {}",
            shown(&self.peer),
            shown(&self.account)
        )
    }
}

/// A row of `delivered_messages` (a message id already shown).
pub(crate) struct DeliveredRow {
    pub(crate) seq: i64,
    pub(crate) account: String,
    pub(crate) peer: String,
    pub(crate) message_id: String,
    pub(crate) tag: Vec<u8>,
}

impl Tagged for DeliveredRow {
    const TABLE: &'static str = "delivered_messages";
    const COLUMNS: &'static str = "seq, account, peer, message_id, tag";
    const FROM: &'static str = "delivered_messages";
    const SET_TAG: &'static str = "UPDATE delivered_messages SET tag = ?1 WHERE seq = ?2";

    fn from_row(r: &Row<'_>) -> rusqlite::Result<Self> {
        Ok(Self {
            seq: r.get(0)?,
            account: r.get(1)?,
            peer: r.get(2)?,
            message_id: r.get(3)?,
            tag: r.get(4)?,
        })
    }
    fn rowid(&self) -> i64 {
        self.seq
    }
    fn stored_tag(&self) -> &[u8] {
        &self.tag
    }
    fn fields(&self) -> Vec<Field<'_>> {
        vec![
            Field::Text(&self.account),
            Field::Text(&self.peer),
            Field::Text(&self.message_id),
        ]
    }
    fn describe(&self) -> String {
        format!(
            "a message from {} recorded as shown to {}",
            shown(&self.peer),
            shown(&self.account)
        )
    }
}

/// The `retained_lifetime` row of `meta` (the only tagged `meta` row: the
/// unlock parameters are authenticated by the key check, since any change to
/// them derives another key).
pub(crate) struct LifetimeRow {
    pub(crate) rowid: i64,
    pub(crate) value: i64,
    pub(crate) tag: Vec<u8>,
}

impl LifetimeRow {
    pub(crate) const NAME: &'static str = "retained_lifetime";

    /// The error for a store whose `retained_lifetime` row is gone: every
    /// store has one from creation (or from the version-3 migration) on.
    pub(crate) fn missing() -> StoreError {
        StoreError::Tampered {
            what: "meta: the retained-secret lifetime is missing".into(),
        }
    }
}

impl Tagged for LifetimeRow {
    const TABLE: &'static str = "meta";
    const COLUMNS: &'static str = "rowid, value, tag";
    const FROM: &'static str = "meta WHERE name = 'retained_lifetime'";
    const SET_TAG: &'static str = "UPDATE meta SET tag = ?1 WHERE rowid = ?2";

    fn from_row(r: &Row<'_>) -> rusqlite::Result<Self> {
        Ok(Self {
            rowid: r.get(0)?,
            value: r.get(1)?,
            // The column is nullable (only this row of `meta` is tagged); a
            // missing tag is an empty one, which never verifies.
            tag: r.get::<_, Option<Vec<u8>>>(2)?.unwrap_or_default(),
        })
    }
    fn rowid(&self) -> i64 {
        self.rowid
    }
    fn stored_tag(&self) -> &[u8] {
        &self.tag
    }
    fn fields(&self) -> Vec<Field<'_>> {
        vec![Field::Text(Self::NAME), Field::Int(self.value)]
    }
    fn describe(&self) -> String {
        "the retained-secret lifetime".into()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shown_text_is_escaped_and_bounded() {
        assert_eq!(shown("bob@y"), "\"bob@y\"");
        assert_eq!(shown("a\u{1b}[2J"), "\"a\\u{1b}[2J\"");
        let long = "x".repeat(1000);
        assert!(shown(&long).chars().count() < 80);
    }
}
