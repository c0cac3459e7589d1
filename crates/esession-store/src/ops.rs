//! The SQL behind every operation. Each function runs inside a transaction
//! opened by its caller (`Shared::read` / `Shared::write`).

use esession::RetainedSecret;
use esession_crypto::SecretBytes;
use rusqlite::{Connection, OptionalExtension, params};

use crate::StoreError;
use crate::seal::{DataKey, aad};
use crate::tags::{
    ContactRow, DeliveredRow, KeyJidRow, LifetimeRow, PeerKeyRow, RetainedRow, SasRow, Tagged,
    select_verified,
};
use crate::types::{
    CheckReport, History, HistoryEntry, KeyId, KeyObservation, KeyStatus, PeerKey, PeerKeyId,
    RetainedSecretInfo, SasRecord, SasState, SeenJid, SigningKeyInfo,
};

// ---- helpers ---------------------------------------------------------------

/// A Unix time as SQLite's signed integer.
pub(crate) fn db_time(t: u64) -> Result<i64, StoreError> {
    i64::try_from(t).map_err(|_| StoreError::Invalid(format!("time {t} is out of range")))
}

fn from_db_time(v: i64) -> Result<u64, StoreError> {
    u64::try_from(v).map_err(|_| StoreError::Corrupt(format!("negative time {v}")))
}

pub(crate) fn check_account(account: &str) -> Result<(), StoreError> {
    if account.is_empty() || account.contains('/') {
        return Err(StoreError::Invalid(format!(
            "account must be a bare JID, got {account:?}"
        )));
    }
    Ok(())
}

pub(crate) fn meta_get_i64(conn: &Connection, name: &str) -> Result<Option<i64>, StoreError> {
    Ok(conn
        .query_row("SELECT value FROM meta WHERE name = ?1", [name], |r| {
            r.get(0)
        })
        .optional()?)
}

pub(crate) fn meta_get_blob(conn: &Connection, name: &str) -> Result<Option<Vec<u8>>, StoreError> {
    Ok(conn
        .query_row("SELECT value FROM meta WHERE name = ?1", [name], |r| {
            r.get(0)
        })
        .optional()?)
}

pub(crate) fn meta_get_text(conn: &Connection, name: &str) -> Result<Option<String>, StoreError> {
    Ok(conn
        .query_row("SELECT value FROM meta WHERE name = ?1", [name], |r| {
            r.get(0)
        })
        .optional()?)
}

pub(crate) fn meta_set(
    conn: &Connection,
    name: &str,
    value: &dyn rusqlite::ToSql,
) -> Result<(), StoreError> {
    conn.execute(
        "INSERT INTO meta (name, value) VALUES (?1, ?2)
         ON CONFLICT (name) DO UPDATE SET value = excluded.value",
        params![name, value],
    )?;
    Ok(())
}

pub(crate) fn retained_aad(
    account: &str,
    peer: &str,
    client: &str,
    id: i64,
    created: i64,
) -> Vec<u8> {
    aad(
        "retained_secrets",
        "secret",
        &[
            account.as_bytes(),
            peer.as_bytes(),
            client.as_bytes(),
            &id.to_be_bytes(),
            &created.to_be_bytes(),
        ],
    )
}

pub(crate) fn other_aad(account: &str, peer: &str) -> Vec<u8> {
    aad(
        "other_secrets",
        "secret",
        &[account.as_bytes(), peer.as_bytes()],
    )
}

pub(crate) fn signing_aad(account: &str, id: i64, algorithm: &str, public_key: &[u8]) -> Vec<u8> {
    aad(
        "signing_keys",
        "private_key",
        &[
            account.as_bytes(),
            &id.to_be_bytes(),
            algorithm.as_bytes(),
            public_key,
        ],
    )
}

// ---- retained secrets (the trait) -----------------------------------------

/// Default lifetime of retained secrets: the core's default (180 days).
pub(crate) const DEFAULT_RETAINED_LIFETIME: u64 = 180 * 24 * 3600;

/// The retained-secret lifetime, its tag verified. Every store has the row
/// from creation (or from the version-3 migration) on, so a missing one is
/// tampering too.
pub(crate) fn retained_lifetime(conn: &Connection, key: &DataKey) -> Result<u64, StoreError> {
    let row = select_verified::<LifetimeRow>(conn, key, "", [])?
        .pop()
        .ok_or_else(LifetimeRow::missing)?;
    from_db_time(row.value)
}

/// Sets the retained-secret lifetime in `meta`, with its tag.
pub(crate) fn set_lifetime_meta(
    conn: &Connection,
    key: &DataKey,
    lifetime: u64,
) -> Result<(), StoreError> {
    let value = db_time(lifetime)?;
    let row = LifetimeRow {
        rowid: 0,
        value,
        tag: Vec::new(),
    };
    conn.execute(
        "INSERT INTO meta (name, value, tag) VALUES (?1, ?2, ?3)
         ON CONFLICT (name) DO UPDATE SET value = excluded.value, tag = excluded.tag",
        params![LifetimeRow::NAME, value, row.tag(key)],
    )?;
    Ok(())
}

/// `created + lifetime`, saturating at SQLite's largest integer.
fn expiry(created: i64, lifetime: u64) -> i64 {
    i64::try_from(lifetime)
        .ok()
        .and_then(|l| created.checked_add(l))
        .unwrap_or(i64::MAX)
}

pub(crate) fn retained_secrets(
    conn: &Connection,
    key: &DataKey,
    account: &str,
    peer: &str,
) -> Result<Vec<RetainedSecret>, StoreError> {
    let rows = select_verified::<RetainedRow>(
        conn,
        key,
        "WHERE account = ?1 AND peer = ?2 ORDER BY id DESC",
        [account, peer],
    )?;
    rows.into_iter()
        .map(|row| retained_secret(key, row))
        .collect()
}

/// The core's view of a retained-secret row whose tag was verified.
fn retained_secret(key: &DataKey, row: RetainedRow) -> Result<RetainedSecret, StoreError> {
    let id = row.id;
    let secret = key.open(
        &retained_aad(&row.account, &row.peer, &row.client, id, row.created),
        &row.secret,
        &|| format!("retained secret row {id}"),
    )?;
    Ok(RetainedSecret {
        client: row.client,
        secret,
        created: from_db_time(row.created)?,
        verified: row.verified == 1,
    })
}

/// ESN-35's extended search: secrets of every peer but `except_peer`, created
/// at or after `created_since`, newest first, at most `limit`.
pub(crate) fn retained_secrets_of_other_peers(
    conn: &Connection,
    key: &DataKey,
    account: &str,
    except_peer: &str,
    created_since: u64,
    limit: usize,
) -> Result<Vec<(String, RetainedSecret)>, StoreError> {
    let since = i64::try_from(created_since).unwrap_or(i64::MAX);
    let limit = i64::try_from(limit).unwrap_or(i64::MAX);
    let rows = select_verified::<RetainedRow>(
        conn,
        key,
        "WHERE account = ?1 AND peer <> ?2 AND created >= ?3 ORDER BY id DESC LIMIT ?4",
        params![account, except_peer, since, limit],
    )?;
    rows.into_iter()
        .map(|row| Ok((row.peer.clone(), retained_secret(key, row)?)))
        .collect()
}

pub(crate) fn retained_secret_info(
    conn: &Connection,
    key: &DataKey,
    account: &str,
    peer: &str,
) -> Result<Vec<RetainedSecretInfo>, StoreError> {
    select_verified::<RetainedRow>(
        conn,
        key,
        "WHERE account = ?1 AND peer = ?2 ORDER BY id DESC",
        [account, peer],
    )?
    .into_iter()
    .map(|row| {
        Ok(RetainedSecretInfo {
            created: from_db_time(row.created)?,
            expires: from_db_time(row.expires)?,
            verified: row.verified == 1,
            client: row.client,
        })
    })
    .collect()
}

pub(crate) fn store_retained_secret(
    conn: &Connection,
    key: &DataKey,
    account: &str,
    peer: &str,
    secret: &RetainedSecret,
) -> Result<(), StoreError> {
    let created = db_time(secret.created)?;
    let expires = expiry(created, retained_lifetime(conn, key)?);
    verify_chain(conn, key, account, peer, &secret.client)?;
    // The row id is part of the associated data and of the tag, so insert
    // first, then seal and tag.
    conn.execute(
        "INSERT INTO retained_secrets (account, peer, client, secret, created, expires, verified)
         VALUES (?1, ?2, ?3, X'', ?4, ?5, ?6)",
        params![
            account,
            peer,
            secret.client,
            created,
            expires,
            secret.verified
        ],
    )?;
    let id = conn.last_insert_rowid();
    let sealed = key.seal(
        &retained_aad(account, peer, &secret.client, id, created),
        secret.secret.expose(),
    )?;
    let row = RetainedRow {
        id,
        account: account.to_owned(),
        peer: peer.to_owned(),
        client: secret.client.clone(),
        secret: sealed,
        created,
        expires,
        verified: i64::from(secret.verified),
        tag: Vec::new(),
    };
    conn.execute(
        "UPDATE retained_secrets SET secret = ?1, tag = ?2 WHERE id = ?3",
        params![row.secret, row.tag(key), id],
    )?;
    // Keep the new secret and at most its predecessor (AMB-57).
    conn.execute(
        "DELETE FROM retained_secrets
         WHERE account = ?1 AND peer = ?2 AND client = ?3 AND id NOT IN (
             SELECT id FROM retained_secrets WHERE account = ?1 AND peer = ?2 AND client = ?3
             ORDER BY id DESC LIMIT 2)",
        params![account, peer, secret.client],
    )?;
    Ok(())
}

/// The rows of (`peer`, `client`), verified: what decides which of them a
/// write keeps (a forged row with a high id must not make us delete the
/// genuine ones).
fn verify_chain(
    conn: &Connection,
    key: &DataKey,
    account: &str,
    peer: &str,
    client: &str,
) -> Result<Vec<RetainedRow>, StoreError> {
    select_verified::<RetainedRow>(
        conn,
        key,
        "WHERE account = ?1 AND peer = ?2 AND client = ?3",
        [account, peer, client],
    )
}

pub(crate) fn confirm_retained_secret(
    conn: &Connection,
    key: &DataKey,
    account: &str,
    peer: &str,
    client: &str,
) -> Result<(), StoreError> {
    verify_chain(conn, key, account, peer, client)?;
    conn.execute(
        "DELETE FROM retained_secrets
         WHERE account = ?1 AND peer = ?2 AND client = ?3 AND id < (
             SELECT max(id) FROM retained_secrets WHERE account = ?1 AND peer = ?2 AND client = ?3)",
        params![account, peer, client],
    )?;
    Ok(())
}

/// Sets whether the secret chain with (`peer`, `client`) was SAS-verified
/// (ESN-42; cleared by a distrust, issue 10).
///
/// Every row is verified before it is re-tagged, so a rewrite never launders
/// a row someone else changed.
pub(crate) fn set_chain_verified(
    conn: &Connection,
    key: &DataKey,
    account: &str,
    peer: &str,
    client: &str,
    verified: bool,
) -> Result<(), StoreError> {
    for mut row in verify_chain(conn, key, account, peer, client)? {
        row.verified = i64::from(verified);
        conn.execute(
            "UPDATE retained_secrets SET verified = ?1, tag = ?2 WHERE id = ?3",
            params![row.verified, row.tag(key), row.id],
        )?;
    }
    Ok(())
}

pub(crate) fn purge_expired(conn: &Connection, now: u64) -> Result<usize, StoreError> {
    // Expired means `now >= created + lifetime`, as in the core (ESN-35).
    let now = i64::try_from(now).unwrap_or(i64::MAX);
    Ok(conn.execute("DELETE FROM retained_secrets WHERE expires <= ?1", [now])?)
}

/// Sets the lifetime and recomputes (and re-tags) `expires` of every retained
/// secret, each verified first.
pub(crate) fn set_retained_lifetime(
    conn: &Connection,
    key: &DataKey,
    lifetime: u64,
) -> Result<(), StoreError> {
    set_lifetime_meta(conn, key, lifetime)?;
    for mut row in select_verified::<RetainedRow>(conn, key, "", [])? {
        row.expires = expiry(row.created, lifetime);
        conn.execute(
            "UPDATE retained_secrets SET expires = ?1, tag = ?2 WHERE id = ?3",
            params![row.expires, row.tag(key), row.id],
        )?;
    }
    Ok(())
}

// ---- other shared secrets ----------------------------------------------------

pub(crate) fn other_secret(
    conn: &Connection,
    key: &DataKey,
    account: &str,
    peer: &str,
) -> Result<Option<SecretBytes>, StoreError> {
    let sealed: Option<Vec<u8>> = conn
        .query_row(
            "SELECT secret FROM other_secrets WHERE account = ?1 AND peer = ?2",
            [account, peer],
            |r| r.get(0),
        )
        .optional()?;
    sealed
        .map(|s| {
            key.open(&other_aad(account, peer), &s, &|| {
                "other shared secret".to_owned()
            })
        })
        .transpose()
}

pub(crate) fn set_other_secret(
    conn: &Connection,
    key: &DataKey,
    account: &str,
    peer: &str,
    secret: &SecretBytes,
) -> Result<(), StoreError> {
    let sealed = key.seal(&other_aad(account, peer), secret.expose())?;
    conn.execute(
        "INSERT INTO other_secrets (account, peer, secret) VALUES (?1, ?2, ?3)
         ON CONFLICT (account, peer) DO UPDATE SET secret = excluded.secret",
        params![account, peer, sealed],
    )?;
    Ok(())
}

pub(crate) fn clear_other_secret(
    conn: &Connection,
    account: &str,
    peer: &str,
) -> Result<bool, StoreError> {
    Ok(conn.execute(
        "DELETE FROM other_secrets WHERE account = ?1 AND peer = ?2",
        [account, peer],
    )? > 0)
}

// ---- XEP-0187 option sets (OFF-03) ------------------------------------------------

pub(crate) fn offline_aad(
    account: &str,
    id: i64,
    nonce: &[u8],
    options: &str,
    expires: i64,
) -> Vec<u8> {
    aad(
        "offline_option_sets",
        "exponents",
        &[
            account.as_bytes(),
            &id.to_be_bytes(),
            nonce,
            options.as_bytes(),
            &expires.to_be_bytes(),
        ],
    )
}

/// Every x of a set, as `name length, name, x length (2 bytes), x` per group.
fn encode_exponents(set: &esession::offline::OfflineOptionSet) -> Result<SecretBytes, StoreError> {
    let mut out = zeroize::Zeroizing::new(Vec::new());
    for (group, x) in set.private_exponents() {
        let name = group.name();
        let name = name.as_bytes();
        let (Ok(name_len), Ok(x_len)) = (u8::try_from(name.len()), u16::try_from(x.len())) else {
            return Err(StoreError::Corrupt(
                "an offline exponent is too long".to_owned(),
            ));
        };
        out.push(name_len);
        out.extend_from_slice(name);
        out.extend_from_slice(&x_len.to_be_bytes());
        out.extend_from_slice(x.expose());
    }
    Ok(SecretBytes::from_slice(&out))
}

fn decode_exponents(bytes: &[u8]) -> Option<Vec<(esession_crypto::ModpGroup, &[u8])>> {
    let mut rest = bytes;
    let mut out = Vec::new();
    while let Some((&name_len, tail)) = rest.split_first() {
        let (name, tail) = tail.split_at_checked(usize::from(name_len))?;
        let (len, tail) = tail.split_at_checked(2)?;
        let x_len = usize::from(u16::from_be_bytes([len[0], len[1]]));
        let (x, tail) = tail.split_at_checked(x_len)?;
        let group = esession_crypto::ModpGroup::from_name(std::str::from_utf8(name).ok()?).ok()?;
        out.push((group, x));
        rest = tail;
    }
    Some(out)
}

pub(crate) fn save_offline_set(
    conn: &Connection,
    key: &DataKey,
    account: &str,
    set: &esession::offline::OfflineOptionSet,
) -> Result<(), StoreError> {
    let options = esession_wire::xml::serialize(&set.options, "")
        .map_err(|_| StoreError::Corrupt("the offline options do not serialize".to_owned()))?;
    let id: i64 = conn.query_row(
        "SELECT COALESCE(MAX(id), 0) + 1 FROM offline_option_sets",
        [],
        |r| r.get(0),
    )?;
    let exponents = encode_exponents(set)?;
    let sealed = key.seal(
        &offline_aad(account, id, set.nonce(), &options, set.expires_at),
        exponents.expose(),
    )?;
    conn.execute(
        "INSERT INTO offline_option_sets (id, account, nonce, options, expires, exponents)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
        params![id, account, set.nonce(), options, set.expires_at, sealed],
    )?;
    Ok(())
}

/// OFF-13: loads every option set of `account` and destroys the stored
/// copies in the same transaction, the ones that cannot be read (damaged or
/// edited: their sealed x does not open) too, counted.
pub(crate) fn take_offline_sets(
    conn: &Connection,
    key: &DataKey,
    account: &str,
) -> Result<(Vec<esession::offline::OfflineOptionSet>, usize), StoreError> {
    let mut stmt = conn.prepare(
        "SELECT id, nonce, options, expires, exponents FROM offline_option_sets
         WHERE account = ?1 ORDER BY id",
    )?;
    let rows = stmt
        .query_map([account], |r| {
            Ok((
                r.get::<_, i64>(0)?,
                r.get::<_, Vec<u8>>(1)?,
                r.get::<_, String>(2)?,
                r.get::<_, i64>(3)?,
                r.get::<_, Vec<u8>>(4)?,
            ))
        })?
        .collect::<Result<Vec<_>, _>>()?;
    let mut sets = Vec::new();
    let mut unreadable = 0;
    for (id, nonce, options, expires, sealed) in rows {
        let what = || format!("offline option set {id}");
        let restored = key
            .open(
                &offline_aad(account, id, &nonce, &options, expires),
                &sealed,
                &what,
            )
            .ok()
            .and_then(|exponents| {
                let parsed = decode_exponents(exponents.expose())?;
                let element = esession_wire::xml::parse_document(&options).ok()?;
                esession::offline::OfflineOptionSet::restore(element, expires, nonce, &parsed).ok()
            });
        match restored {
            Some(set) => sets.push(set),
            None => unreadable += 1,
        }
    }
    conn.execute(
        "DELETE FROM offline_option_sets WHERE account = ?1",
        [account],
    )?;
    Ok((sets, unreadable))
}

// ---- local history (issue 14) --------------------------------------------------

pub(crate) fn history_aad(account: &str, id: i64, entry: &HistoryEntry) -> Vec<u8> {
    aad(
        "history",
        "body",
        &[
            account.as_bytes(),
            &id.to_be_bytes(),
            entry.contact.as_bytes(),
            entry.peer.as_bytes(),
            entry.thread.as_bytes(),
            &[u8::from(entry.outgoing)],
            &entry.time.to_be_bytes(),
            &[u8::from(entry.verified)],
        ],
    )
}

pub(crate) fn add_history(
    conn: &Connection,
    key: &DataKey,
    account: &str,
    entry: &HistoryEntry,
) -> Result<(), StoreError> {
    let id: i64 = conn.query_row("SELECT COALESCE(MAX(id), 0) + 1 FROM history", [], |r| {
        r.get(0)
    })?;
    let sealed = key.seal(&history_aad(account, id, entry), entry.body.as_bytes())?;
    conn.execute(
        "INSERT INTO history (id, account, contact, peer, thread, outgoing, time, verified, body)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)",
        params![
            id,
            account,
            entry.contact,
            entry.peer,
            entry.thread,
            entry.outgoing,
            to_sql_time(entry.time),
            entry.verified,
            sealed
        ],
    )?;
    Ok(())
}

/// `contact`'s messages since `since`, the newest `last` of them when given,
/// oldest first.
pub(crate) fn history(
    conn: &Connection,
    key: &DataKey,
    account: &str,
    contact: &str,
    since: u64,
    last: Option<usize>,
) -> Result<History, StoreError> {
    let limit = last.map_or(-1, |n| i64::try_from(n).unwrap_or(i64::MAX));
    let mut stmt = conn.prepare(
        "SELECT id, peer, thread, outgoing, time, verified, body FROM history
         WHERE account = ?1 AND contact = ?2 AND time >= ?3
         ORDER BY time DESC, id DESC LIMIT ?4",
    )?;
    let rows = stmt
        .query_map(params![account, contact, to_sql_time(since), limit], |r| {
            Ok((
                r.get::<_, i64>(0)?,
                r.get::<_, String>(1)?,
                r.get::<_, String>(2)?,
                r.get::<_, bool>(3)?,
                r.get::<_, i64>(4)?,
                r.get::<_, bool>(5)?,
                r.get::<_, Vec<u8>>(6)?,
            ))
        })?
        .collect::<Result<Vec<_>, _>>()?;
    let mut out = History::default();
    for (id, peer, thread, outgoing, time, verified, sealed) in rows.into_iter().rev() {
        let mut entry = HistoryEntry {
            contact: contact.to_owned(),
            peer,
            thread,
            outgoing,
            time: u64::try_from(time).unwrap_or_default(),
            verified,
            body: String::new(),
        };
        let what = || format!("history row {id}");
        let body = key
            .open(&history_aad(account, id, &entry), &sealed, &what)
            .ok()
            .and_then(|plain| String::from_utf8(plain.expose().to_vec()).ok());
        match body {
            Some(body) => {
                entry.body = body;
                out.entries.push(entry);
            }
            None => out.unreadable += 1,
        }
    }
    Ok(out)
}

/// Deletes `contact`'s history; how many messages.
pub(crate) fn forget_history(
    conn: &Connection,
    account: &str,
    contact: &str,
) -> Result<usize, StoreError> {
    Ok(conn.execute(
        "DELETE FROM history WHERE account = ?1 AND contact = ?2",
        [account, contact],
    )?)
}

fn to_sql_time(time: u64) -> i64 {
    i64::try_from(time).unwrap_or(i64::MAX)
}

// ---- our signing keys ----------------------------------------------------------

pub(crate) fn add_signing_key(
    conn: &Connection,
    key: &DataKey,
    account: &str,
    algorithm: &str,
    public_key: &[u8],
    private_key: &SecretBytes,
    created: u64,
) -> Result<KeyId, StoreError> {
    conn.execute(
        "INSERT INTO signing_keys (account, algorithm, public_key, private_key, created)
         VALUES (?1, ?2, ?3, X'', ?4)",
        params![account, algorithm, public_key, db_time(created)?],
    )?;
    let id = conn.last_insert_rowid();
    let sealed = key.seal(
        &signing_aad(account, id, algorithm, public_key),
        private_key.expose(),
    )?;
    conn.execute(
        "UPDATE signing_keys SET private_key = ?1 WHERE id = ?2",
        params![sealed, id],
    )?;
    Ok(KeyId(id))
}

fn signing_key_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<(i64, String, Vec<u8>, i64)> {
    Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?))
}

pub(crate) fn list_signing_keys(
    conn: &Connection,
    account: &str,
) -> Result<Vec<SigningKeyInfo>, StoreError> {
    let mut stmt = conn.prepare_cached(
        "SELECT id, algorithm, public_key, created FROM signing_keys
         WHERE account = ?1 ORDER BY id",
    )?;
    let rows = stmt.query_map([account], signing_key_row)?;
    let mut out = Vec::new();
    for row in rows {
        let (id, algorithm, public_key, created) = row?;
        out.push(SigningKeyInfo {
            id: KeyId(id),
            algorithm,
            public_key,
            created: from_db_time(created)?,
        });
    }
    Ok(out)
}

pub(crate) fn signing_key_private(
    conn: &Connection,
    key: &DataKey,
    account: &str,
    id: KeyId,
) -> Result<SecretBytes, StoreError> {
    let (algorithm, public_key, sealed): (String, Vec<u8>, Vec<u8>) = conn
        .query_row(
            "SELECT algorithm, public_key, private_key FROM signing_keys
             WHERE account = ?1 AND id = ?2",
            params![account, id.0],
            |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
        )
        .optional()?
        .ok_or_else(|| StoreError::NotFound(format!("signing key {} of {account}", id.0)))?;
    key.open(
        &signing_aad(account, id.0, &algorithm, &public_key),
        &sealed,
        &|| format!("signing key {}", id.0),
    )
}

pub(crate) fn delete_signing_key(
    conn: &Connection,
    account: &str,
    id: KeyId,
) -> Result<(), StoreError> {
    let n = conn.execute(
        "DELETE FROM signing_keys WHERE account = ?1 AND id = ?2",
        params![account, id.0],
    )?;
    if n == 0 {
        return Err(StoreError::NotFound(format!(
            "signing key {} of {account}",
            id.0
        )));
    }
    Ok(())
}

// ---- contacts' keys -------------------------------------------------------------

pub(crate) fn record_peer_key(
    conn: &Connection,
    key: &DataKey,
    account: &str,
    peer: &str,
    fingerprint: &[u8],
    keyvalue: &[u8],
    seen_at: u64,
) -> Result<KeyObservation, StoreError> {
    let seen = db_time(seen_at)?;
    // Every row this decision reads is verified: the key's own row (its
    // verified flag and petname are reported), the JIDs it was seen with
    // (ESN-50), and the other keys this JID used before (ESN-51).
    let existing = select_verified::<PeerKeyRow>(
        conn,
        key,
        "WHERE account = ?1 AND fingerprint = ?2",
        params![account, fingerprint],
    )?
    .pop();

    // Other keys this JID used before (ESN-51), most recently seen first. The
    // binding's tag covers the key's fingerprint, so the binding alone is
    // evidence that this JID used that key.
    let previous_fingerprints: Vec<Vec<u8>> = select_verified::<KeyJidRow>(
        conn,
        key,
        "WHERE k.account = ?1 AND j.peer = ?2 AND k.fingerprint <> ?3
         ORDER BY j.last_seen DESC, k.id DESC",
        params![account, peer, fingerprint],
    )?
    .into_iter()
    .map(|j| j.fingerprint)
    .collect();

    let (key_id, verified, petname, jids) = match existing {
        Some(row) => {
            let jids = select_verified::<KeyJidRow>(
                conn,
                key,
                "WHERE j.key_id = ?1 ORDER BY j.first_seen, j.rowid",
                [row.id],
            )?;
            (row.id, row.verified == 1, row.petname, jids)
        }
        None => {
            conn.execute(
                "INSERT INTO peer_keys (account, fingerprint, keyvalue, first_seen)
                 VALUES (?1, ?2, ?3, ?4)",
                params![account, fingerprint, keyvalue, seen],
            )?;
            let row = PeerKeyRow {
                id: conn.last_insert_rowid(),
                account: account.to_owned(),
                fingerprint: fingerprint.to_vec(),
                keyvalue: keyvalue.to_vec(),
                petname: None,
                verified: 0,
                first_seen: seen,
                tag: Vec::new(),
            };
            row.store_tag(conn, key)?;
            (row.id, false, None, Vec::new())
        }
    };
    let mut binding = None;
    let mut other_jids = Vec::new();
    for jid in jids {
        if jid.peer == peer {
            binding = Some(jid);
        } else {
            other_jids.push(jid.peer);
        }
    }
    let bound_here = binding.is_some();

    match binding {
        Some(mut row) => {
            row.last_seen = row.last_seen.max(seen);
            conn.execute(
                "UPDATE peer_key_jids SET last_seen = ?1, tag = ?2 WHERE rowid = ?3",
                params![row.last_seen, row.tag(key), row.rowid],
            )?;
        }
        None => {
            let row = KeyJidRow {
                rowid: 0,
                key_id,
                account: account.to_owned(),
                fingerprint: fingerprint.to_vec(),
                peer: peer.to_owned(),
                first_seen: seen,
                last_seen: seen,
                tag: Vec::new(),
            };
            conn.execute(
                "INSERT INTO peer_key_jids (key_id, peer, first_seen, last_seen, tag)
                 VALUES (?1, ?2, ?3, ?3, ?4)",
                params![key_id, peer, seen, row.tag(key)],
            )?;
        }
    }

    let status = if bound_here {
        KeyStatus::Known
    } else if !previous_fingerprints.is_empty() {
        KeyStatus::KeyChanged
    } else if !other_jids.is_empty() {
        KeyStatus::SeenWithOtherJid
    } else {
        KeyStatus::New
    };
    Ok(KeyObservation {
        key_id: PeerKeyId(key_id),
        status,
        other_jids,
        previous_fingerprints,
        verified,
        petname,
    })
}

/// Reads and verifies the row of a contact key, lets `change` edit it, and
/// stores it with a new tag.
fn update_peer_key(
    conn: &Connection,
    key: &DataKey,
    account: &str,
    fingerprint: &[u8],
    change: impl FnOnce(&mut PeerKeyRow),
) -> Result<(), StoreError> {
    let mut row = select_verified::<PeerKeyRow>(
        conn,
        key,
        "WHERE account = ?1 AND fingerprint = ?2",
        params![account, fingerprint],
    )?
    .pop()
    .ok_or_else(|| StoreError::NotFound(format!("contact key of {account}")))?;
    change(&mut row);
    conn.execute(
        "UPDATE peer_keys SET petname = ?1, verified = ?2, tag = ?3 WHERE id = ?4",
        params![row.petname, row.verified, row.tag(key), row.id],
    )?;
    Ok(())
}

pub(crate) fn set_petname(
    conn: &Connection,
    key: &DataKey,
    account: &str,
    fingerprint: &[u8],
    petname: Option<&str>,
) -> Result<(), StoreError> {
    update_peer_key(conn, key, account, fingerprint, |row| {
        row.petname = petname.map(str::to_owned);
    })
}

pub(crate) fn set_key_verified(
    conn: &Connection,
    key: &DataKey,
    account: &str,
    fingerprint: &[u8],
    verified: bool,
) -> Result<(), StoreError> {
    update_peer_key(conn, key, account, fingerprint, |row| {
        row.verified = i64::from(verified);
    })
}

pub(crate) fn delete_peer_key(
    conn: &Connection,
    account: &str,
    fingerprint: &[u8],
) -> Result<(), StoreError> {
    let n = conn.execute(
        "DELETE FROM peer_keys WHERE account = ?1 AND fingerprint = ?2",
        params![account, fingerprint],
    )?;
    if n == 0 {
        return Err(StoreError::NotFound(format!("contact key of {account}")));
    }
    Ok(())
}

/// Contacts' keys of `account`; only those seen with `peer` if given (most
/// recently seen with it first), else all in order of first sighting. Every
/// key row and every JID binding is verified.
pub(crate) fn peer_keys(
    conn: &Connection,
    key: &DataKey,
    account: &str,
    peer: Option<&str>,
) -> Result<Vec<PeerKey>, StoreError> {
    let keys: Vec<PeerKeyRow> = match peer {
        None => select_verified(conn, key, "WHERE account = ?1 ORDER BY id", [account])?,
        Some(peer) => {
            // The bindings that select the keys are verified too (below, with
            // every other binding of each key).
            let ids: Vec<i64> = conn
                .prepare_cached(
                    "SELECT k.id FROM peer_keys k JOIN peer_key_jids j ON j.key_id = k.id
                     WHERE k.account = ?1 AND j.peer = ?2 ORDER BY j.last_seen DESC, k.id DESC",
                )?
                .query_map([account, peer], |r| r.get(0))?
                .collect::<Result<_, _>>()?;
            let mut keys = Vec::with_capacity(ids.len());
            for id in ids {
                keys.extend(select_verified::<PeerKeyRow>(
                    conn,
                    key,
                    "WHERE id = ?1",
                    [id],
                )?);
            }
            keys
        }
    };
    let mut out = Vec::with_capacity(keys.len());
    for row in keys {
        let jids = select_verified::<KeyJidRow>(
            conn,
            key,
            "WHERE j.key_id = ?1 ORDER BY j.first_seen, j.rowid",
            [row.id],
        )?
        .into_iter()
        .map(|j| {
            Ok(SeenJid {
                first_seen: from_db_time(j.first_seen)?,
                last_seen: from_db_time(j.last_seen)?,
                jid: j.peer,
            })
        })
        .collect::<Result<Vec<_>, StoreError>>()?;
        out.push(PeerKey {
            id: PeerKeyId(row.id),
            first_seen: from_db_time(row.first_seen)?,
            verified: row.verified == 1,
            fingerprint: row.fingerprint,
            keyvalue: row.keyvalue,
            petname: row.petname,
            jids,
        });
    }
    Ok(out)
}

// ---- SAS state, contact settings -----------------------------------------------

/// Message ids kept per (account, contact): the newest, enough for any burst
/// a resend can repeat.
pub(crate) const DELIVERED_IDS_PER_PEER: i64 = 512;
/// Message ids kept per account in all (a bound however many contacts).
pub(crate) const DELIVERED_IDS_PER_ACCOUNT: i64 = 65_536;

/// Records that the message `message_id` from `peer` was shown; false if it
/// was recorded before. Keeps only the newest ids (per contact and in all).
///
/// A row that is already there counts only if its tag verifies: a forged
/// record would otherwise hide a message that was never shown.
pub(crate) fn record_delivery(
    conn: &Connection,
    key: &DataKey,
    account: &str,
    peer: &str,
    message_id: &str,
) -> Result<bool, StoreError> {
    let row = DeliveredRow {
        seq: 0,
        account: account.to_owned(),
        peer: peer.to_owned(),
        message_id: message_id.to_owned(),
        tag: Vec::new(),
    };
    let inserted = conn.execute(
        "INSERT OR IGNORE INTO delivered_messages (account, peer, message_id, tag)
         VALUES (?1, ?2, ?3, ?4)",
        params![account, peer, message_id, row.tag(key)],
    )?;
    if inserted == 0 {
        select_verified::<DeliveredRow>(
            conn,
            key,
            "WHERE account = ?1 AND peer = ?2 AND message_id = ?3",
            [account, peer, message_id],
        )?;
        return Ok(false);
    }
    conn.execute(
        "DELETE FROM delivered_messages WHERE account = ?1 AND peer = ?2 AND seq <= (
             SELECT seq FROM delivered_messages WHERE account = ?1 AND peer = ?2
             ORDER BY seq DESC LIMIT 1 OFFSET ?3)",
        params![account, peer, DELIVERED_IDS_PER_PEER],
    )?;
    conn.execute(
        "DELETE FROM delivered_messages WHERE account = ?1 AND seq <= (
             SELECT seq FROM delivered_messages WHERE account = ?1
             ORDER BY seq DESC LIMIT 1 OFFSET ?2)",
        params![account, DELIVERED_IDS_PER_ACCOUNT],
    )?;
    Ok(true)
}

/// Replaces the whole row (the old one is not read, so not verified: the
/// new state is the caller's decision, whatever was there).
pub(crate) fn set_sas_state(
    conn: &Connection,
    key: &DataKey,
    account: &str,
    peer: &str,
    client: &str,
    state: SasState,
    now: u64,
) -> Result<(), StoreError> {
    let row = SasRow {
        rowid: 0,
        account: account.to_owned(),
        peer: peer.to_owned(),
        client: client.to_owned(),
        state: state.as_str().to_owned(),
        updated: db_time(now)?,
        tag: Vec::new(),
    };
    conn.execute(
        "INSERT INTO sas_states (account, peer, client, state, updated, tag)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6)
         ON CONFLICT (account, peer, client)
         DO UPDATE SET state = excluded.state, updated = excluded.updated, tag = excluded.tag",
        params![account, peer, client, row.state, row.updated, row.tag(key)],
    )?;
    Ok(())
}

/// A SAS-state row whose tag was verified.
fn sas_record(row: SasRow) -> Result<SasRecord, StoreError> {
    Ok(SasRecord {
        state: SasState::parse(&row.state)
            .ok_or_else(|| StoreError::Corrupt(format!("SAS state {:?}", row.state)))?,
        updated: from_db_time(row.updated)?,
        peer: row.peer,
        client: row.client,
    })
}

pub(crate) fn sas_state(
    conn: &Connection,
    key: &DataKey,
    account: &str,
    peer: &str,
    client: &str,
) -> Result<Option<SasRecord>, StoreError> {
    select_verified::<SasRow>(
        conn,
        key,
        "WHERE account = ?1 AND peer = ?2 AND client = ?3",
        [account, peer, client],
    )?
    .pop()
    .map(sas_record)
    .transpose()
}

pub(crate) fn sas_states(
    conn: &Connection,
    key: &DataKey,
    account: &str,
) -> Result<Vec<SasRecord>, StoreError> {
    select_verified::<SasRow>(
        conn,
        key,
        "WHERE account = ?1 ORDER BY peer, client",
        [account],
    )?
    .into_iter()
    .map(sas_record)
    .collect()
}

/// Replaces the whole row, like [`set_sas_state`].
pub(crate) fn set_contact_profile(
    conn: &Connection,
    key: &DataKey,
    account: &str,
    peer: &str,
    profile: Option<&str>,
) -> Result<(), StoreError> {
    match profile {
        Some(profile) => {
            let row = ContactRow {
                rowid: 0,
                account: account.to_owned(),
                peer: peer.to_owned(),
                profile: Some(profile.to_owned()),
                tag: Vec::new(),
            };
            conn.execute(
                "INSERT INTO contacts (account, peer, profile, tag) VALUES (?1, ?2, ?3, ?4)
                 ON CONFLICT (account, peer)
                 DO UPDATE SET profile = excluded.profile, tag = excluded.tag",
                params![account, peer, profile, row.tag(key)],
            )?
        }
        // The row holds nothing else: clearing the profile deletes it, so a
        // contact known only by a cleared setting is not listed any more.
        None => conn.execute(
            "DELETE FROM contacts WHERE account = ?1 AND peer = ?2",
            params![account, peer],
        )?,
    };
    Ok(())
}

pub(crate) fn contact_profiles(
    conn: &Connection,
    key: &DataKey,
    account: &str,
) -> Result<Vec<(String, String)>, StoreError> {
    // Every row of the account is verified, also one whose profile was
    // cleared behind our back.
    Ok(
        select_verified::<ContactRow>(conn, key, "WHERE account = ?1 ORDER BY peer", [account])?
            .into_iter()
            .filter_map(|row| Some((row.peer, row.profile?)))
            .collect(),
    )
}

pub(crate) fn contact_profile(
    conn: &Connection,
    key: &DataKey,
    account: &str,
    peer: &str,
) -> Result<Option<String>, StoreError> {
    Ok(select_verified::<ContactRow>(
        conn,
        key,
        "WHERE account = ?1 AND peer = ?2",
        [account, peer],
    )?
    .pop()
    .and_then(|row| row.profile))
}

pub(crate) fn forget_contact(
    conn: &Connection,
    account: &str,
    peer: &str,
) -> Result<(), StoreError> {
    for sql in [
        "DELETE FROM retained_secrets WHERE account = ?1 AND peer = ?2",
        "DELETE FROM other_secrets WHERE account = ?1 AND peer = ?2",
        "DELETE FROM sas_states WHERE account = ?1 AND peer = ?2",
        "DELETE FROM contacts WHERE account = ?1 AND peer = ?2",
        "DELETE FROM delivered_messages WHERE account = ?1 AND peer = ?2",
        "DELETE FROM peer_key_jids WHERE peer = ?2
             AND key_id IN (SELECT id FROM peer_keys WHERE account = ?1)",
    ] {
        conn.execute(sql, [account, peer])?;
    }
    // Keys now bound to no JID belonged to this contact alone.
    conn.execute(
        "DELETE FROM peer_keys WHERE account = ?1
             AND id NOT IN (SELECT key_id FROM peer_key_jids)",
        [account],
    )?;
    Ok(())
}

pub(crate) fn accounts(conn: &Connection) -> Result<Vec<String>, StoreError> {
    let mut stmt = conn.prepare_cached(
        "SELECT account FROM signing_keys UNION SELECT account FROM peer_keys
         UNION SELECT account FROM retained_secrets UNION SELECT account FROM other_secrets
         UNION SELECT account FROM sas_states UNION SELECT account FROM contacts
         ORDER BY 1",
    )?;
    Ok(stmt
        .query_map([], |r| r.get(0))?
        .collect::<Result<_, _>>()?)
}

pub(crate) fn contacts(conn: &Connection, account: &str) -> Result<Vec<String>, StoreError> {
    let mut stmt = conn.prepare_cached(
        "SELECT peer FROM retained_secrets WHERE account = ?1
         UNION SELECT peer FROM other_secrets WHERE account = ?1
         UNION SELECT peer FROM sas_states WHERE account = ?1
         UNION SELECT peer FROM contacts WHERE account = ?1
         UNION SELECT j.peer FROM peer_key_jids j JOIN peer_keys k ON k.id = j.key_id
               WHERE k.account = ?1
         ORDER BY 1",
    )?;
    Ok(stmt
        .query_map([account], |r| r.get(0))?
        .collect::<Result<_, _>>()?)
}

// ---- whole-store operations -------------------------------------------------------

/// Every sealed value in the store, with its associated data and a way to
/// write a re-sealed value back.
struct SealedCell {
    table: &'static str,
    column: &'static str,
    key_sql: &'static str,
    rowid: i64,
    aad: Vec<u8>,
    sealed: Vec<u8>,
}

fn sealed_cells(conn: &Connection) -> Result<Vec<SealedCell>, StoreError> {
    let mut out = Vec::new();
    let mut stmt = conn.prepare(
        "SELECT id, account, peer, client, created, secret FROM retained_secrets ORDER BY id",
    )?;
    let rows = stmt.query_map([], |r| {
        Ok((
            r.get::<_, i64>(0)?,
            r.get::<_, String>(1)?,
            r.get::<_, String>(2)?,
            r.get::<_, String>(3)?,
            r.get::<_, i64>(4)?,
            r.get::<_, Vec<u8>>(5)?,
        ))
    })?;
    for row in rows {
        let (id, account, peer, client, created, sealed) = row?;
        out.push(SealedCell {
            table: "retained_secrets",
            column: "secret",
            key_sql: "UPDATE retained_secrets SET secret = ?1 WHERE rowid = ?2",
            rowid: id,
            aad: retained_aad(&account, &peer, &client, id, created),
            sealed,
        });
    }
    let mut stmt = conn.prepare("SELECT rowid, account, peer, secret FROM other_secrets")?;
    let rows = stmt.query_map([], |r| {
        Ok((
            r.get::<_, i64>(0)?,
            r.get::<_, String>(1)?,
            r.get::<_, String>(2)?,
            r.get::<_, Vec<u8>>(3)?,
        ))
    })?;
    for row in rows {
        let (rowid, account, peer, sealed) = row?;
        out.push(SealedCell {
            table: "other_secrets",
            column: "secret",
            key_sql: "UPDATE other_secrets SET secret = ?1 WHERE rowid = ?2",
            rowid,
            aad: other_aad(&account, &peer),
            sealed,
        });
    }
    let mut stmt = conn.prepare(
        "SELECT id, account, nonce, options, expires, exponents FROM offline_option_sets ORDER BY id",
    )?;
    let rows = stmt.query_map([], |r| {
        Ok((
            r.get::<_, i64>(0)?,
            r.get::<_, String>(1)?,
            r.get::<_, Vec<u8>>(2)?,
            r.get::<_, String>(3)?,
            r.get::<_, i64>(4)?,
            r.get::<_, Vec<u8>>(5)?,
        ))
    })?;
    for row in rows {
        let (id, account, nonce, options, expires, sealed) = row?;
        out.push(SealedCell {
            table: "offline_option_sets",
            column: "exponents",
            key_sql: "UPDATE offline_option_sets SET exponents = ?1 WHERE rowid = ?2",
            rowid: id,
            aad: offline_aad(&account, id, &nonce, &options, expires),
            sealed,
        });
    }
    let mut stmt = conn.prepare(
        "SELECT id, account, contact, peer, thread, outgoing, time, verified, body FROM history ORDER BY id",
    )?;
    let rows = stmt.query_map([], |r| {
        Ok((
            r.get::<_, i64>(0)?,
            r.get::<_, String>(1)?,
            HistoryEntry {
                contact: r.get(2)?,
                peer: r.get(3)?,
                thread: r.get(4)?,
                outgoing: r.get(5)?,
                time: u64::try_from(r.get::<_, i64>(6)?).unwrap_or_default(),
                verified: r.get(7)?,
                body: String::new(),
            },
            r.get::<_, Vec<u8>>(8)?,
        ))
    })?;
    for row in rows {
        let (id, account, entry, sealed) = row?;
        out.push(SealedCell {
            table: "history",
            column: "body",
            key_sql: "UPDATE history SET body = ?1 WHERE rowid = ?2",
            rowid: id,
            aad: history_aad(&account, id, &entry),
            sealed,
        });
    }
    let mut stmt = conn.prepare(
        "SELECT id, account, algorithm, public_key, private_key FROM signing_keys ORDER BY id",
    )?;
    let rows = stmt.query_map([], |r| {
        Ok((
            r.get::<_, i64>(0)?,
            r.get::<_, String>(1)?,
            r.get::<_, String>(2)?,
            r.get::<_, Vec<u8>>(3)?,
            r.get::<_, Vec<u8>>(4)?,
        ))
    })?;
    for row in rows {
        let (id, account, algorithm, public_key, sealed) = row?;
        out.push(SealedCell {
            table: "signing_keys",
            column: "private_key",
            key_sql: "UPDATE signing_keys SET private_key = ?1 WHERE rowid = ?2",
            rowid: id,
            aad: signing_aad(&account, id, &algorithm, &public_key),
            sealed,
        });
    }
    Ok(out)
}

fn open_cell(key: &DataKey, cell: &SealedCell) -> Result<SecretBytes, StoreError> {
    key.open(&cell.aad, &cell.sealed, &|| {
        format!("{}.{} of row {}", cell.table, cell.column, cell.rowid)
    })
}

/// Re-seals every secret and re-tags every tagged row under `new` (inside the
/// caller's transaction). Every tag is verified under `old` first, so a
/// re-key never turns a row someone changed into a row with a valid tag.
pub(crate) fn reseal_all(
    conn: &Connection,
    old: &DataKey,
    new: &DataKey,
) -> Result<(), StoreError> {
    crate::tags::visit_all(conn, Some(old), None)?;
    for cell in sealed_cells(conn)? {
        let plain = open_cell(old, &cell)?;
        let sealed = new.seal(&cell.aad, plain.expose())?;
        conn.execute(cell.key_sql, params![sealed, cell.rowid])?;
    }
    // After the re-sealing: a retained secret's tag covers its sealed value.
    crate::tags::visit_all(conn, None, Some(new))?;
    Ok(())
}

/// Full consistency check: SQLite's integrity and foreign-key checks, every
/// sealed value opens, every row tag verifies, and no client has more than
/// two retained secrets.
pub(crate) fn check(conn: &Connection, key: &DataKey) -> Result<CheckReport, StoreError> {
    let integrity: Vec<String> = conn
        .prepare("PRAGMA integrity_check")?
        .query_map([], |r| r.get(0))?
        .collect::<Result<_, _>>()?;
    if integrity != ["ok"] {
        return Err(StoreError::Corrupt(format!(
            "integrity check: {}",
            integrity.join("; ")
        )));
    }
    let fk_violations: i64 =
        conn.query_row("SELECT count(*) FROM pragma_foreign_key_check", [], |r| {
            r.get(0)
        })?;
    if fk_violations != 0 {
        return Err(StoreError::Corrupt(format!(
            "{fk_violations} foreign-key violations"
        )));
    }
    let crowded: i64 = conn.query_row(
        "SELECT count(*) FROM (SELECT 1 FROM retained_secrets
         GROUP BY account, peer, client HAVING count(*) > 2)",
        [],
        |r| r.get(0),
    )?;
    if crowded != 0 {
        return Err(StoreError::Corrupt(format!(
            "{crowded} clients with more than two retained secrets"
        )));
    }
    // Tags first: an edit made without the key is reported as tampering even
    // where it also breaks a seal's associated data.
    crate::tags::visit_all(conn, Some(key), None)?;
    let mut report = CheckReport {
        schema_version: crate::schema::user_version(conn)?,
        signing_keys: 0,
        peer_keys: 0,
        retained_secrets: 0,
        other_secrets: 0,
    };
    for cell in sealed_cells(conn)? {
        open_cell(key, &cell)?;
        match cell.table {
            "retained_secrets" => report.retained_secrets += 1,
            "other_secrets" => report.other_secrets += 1,
            _ => report.signing_keys += 1,
        }
    }
    let peer_keys: i64 = conn.query_row("SELECT count(*) FROM peer_keys", [], |r| r.get(0))?;
    report.peer_keys = usize::try_from(peer_keys).unwrap_or(usize::MAX);
    Ok(report)
}
