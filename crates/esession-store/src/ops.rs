//! The SQL behind every operation. Each function runs inside a transaction
//! opened by its caller (`Shared::read` / `Shared::write`).

use esession::RetainedSecret;
use esession_crypto::SecretBytes;
use rusqlite::{Connection, OptionalExtension, params};

use crate::StoreError;
use crate::seal::{DataKey, aad};
use crate::types::{
    CheckReport, KeyId, KeyObservation, KeyStatus, PeerKey, PeerKeyId, RetainedSecretInfo,
    SasRecord, SasState, SeenJid, SigningKeyInfo,
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

fn retained_aad(account: &str, peer: &str, client: &str, id: i64, created: i64) -> Vec<u8> {
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

fn other_aad(account: &str, peer: &str) -> Vec<u8> {
    aad(
        "other_secrets",
        "secret",
        &[account.as_bytes(), peer.as_bytes()],
    )
}

fn signing_aad(account: &str, id: i64, algorithm: &str, public_key: &[u8]) -> Vec<u8> {
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

pub(crate) fn retained_lifetime(conn: &Connection) -> Result<u64, StoreError> {
    match meta_get_i64(conn, "retained_lifetime")? {
        Some(v) => from_db_time(v),
        None => Ok(DEFAULT_RETAINED_LIFETIME),
    }
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
    let mut stmt = conn.prepare_cached(
        "SELECT id, client, secret, created, verified FROM retained_secrets
         WHERE account = ?1 AND peer = ?2 ORDER BY id DESC",
    )?;
    let rows = stmt.query_map([account, peer], |r| {
        Ok((
            r.get::<_, i64>(0)?,
            r.get::<_, String>(1)?,
            r.get::<_, Vec<u8>>(2)?,
            r.get::<_, i64>(3)?,
            r.get::<_, bool>(4)?,
        ))
    })?;
    let mut out = Vec::new();
    for row in rows {
        let (id, client, sealed, created, verified) = row?;
        let secret = key.open(
            &retained_aad(account, peer, &client, id, created),
            &sealed,
            &|| format!("retained secret row {id}"),
        )?;
        out.push(RetainedSecret {
            client,
            secret,
            created: from_db_time(created)?,
            verified,
        });
    }
    Ok(out)
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
    let mut stmt = conn.prepare_cached(
        "SELECT id, peer, client, secret, created, verified FROM retained_secrets
         WHERE account = ?1 AND peer <> ?2 AND created >= ?3 ORDER BY id DESC LIMIT ?4",
    )?;
    let rows = stmt.query_map(params![account, except_peer, since, limit], |r| {
        Ok((
            r.get::<_, i64>(0)?,
            r.get::<_, String>(1)?,
            r.get::<_, String>(2)?,
            r.get::<_, Vec<u8>>(3)?,
            r.get::<_, i64>(4)?,
            r.get::<_, bool>(5)?,
        ))
    })?;
    let mut out = Vec::new();
    for row in rows {
        let (id, peer, client, sealed, created, verified) = row?;
        let secret = key.open(
            &retained_aad(account, &peer, &client, id, created),
            &sealed,
            &|| format!("retained secret row {id}"),
        )?;
        out.push((
            peer,
            RetainedSecret {
                client,
                secret,
                created: from_db_time(created)?,
                verified,
            },
        ));
    }
    Ok(out)
}

pub(crate) fn retained_secret_info(
    conn: &Connection,
    account: &str,
    peer: &str,
) -> Result<Vec<RetainedSecretInfo>, StoreError> {
    let mut stmt = conn.prepare_cached(
        "SELECT client, created, expires, verified FROM retained_secrets
         WHERE account = ?1 AND peer = ?2 ORDER BY id DESC",
    )?;
    let rows = stmt.query_map([account, peer], |r| {
        Ok((
            r.get::<_, String>(0)?,
            r.get::<_, i64>(1)?,
            r.get::<_, i64>(2)?,
            r.get::<_, bool>(3)?,
        ))
    })?;
    let mut out = Vec::new();
    for row in rows {
        let (client, created, expires, verified) = row?;
        out.push(RetainedSecretInfo {
            client,
            created: from_db_time(created)?,
            expires: from_db_time(expires)?,
            verified,
        });
    }
    Ok(out)
}

pub(crate) fn store_retained_secret(
    conn: &Connection,
    key: &DataKey,
    account: &str,
    peer: &str,
    secret: &RetainedSecret,
) -> Result<(), StoreError> {
    let created = db_time(secret.created)?;
    let expires = expiry(created, retained_lifetime(conn)?);
    // The row id is part of the associated data, so insert first, then seal.
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
    conn.execute(
        "UPDATE retained_secrets SET secret = ?1 WHERE id = ?2",
        params![sealed, id],
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

pub(crate) fn confirm_retained_secret(
    conn: &Connection,
    account: &str,
    peer: &str,
    client: &str,
) -> Result<(), StoreError> {
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
pub(crate) fn set_chain_verified(
    conn: &Connection,
    account: &str,
    peer: &str,
    client: &str,
    verified: bool,
) -> Result<(), StoreError> {
    conn.execute(
        "UPDATE retained_secrets SET verified = ?4 WHERE account = ?1 AND peer = ?2 AND client = ?3",
        params![account, peer, client, verified],
    )?;
    Ok(())
}

pub(crate) fn purge_expired(conn: &Connection, now: u64) -> Result<usize, StoreError> {
    // Expired means `now >= created + lifetime`, as in the core (ESN-35).
    let now = i64::try_from(now).unwrap_or(i64::MAX);
    Ok(conn.execute("DELETE FROM retained_secrets WHERE expires <= ?1", [now])?)
}

pub(crate) fn set_retained_lifetime(conn: &Connection, lifetime: u64) -> Result<(), StoreError> {
    let life = db_time(lifetime)?;
    meta_set(conn, "retained_lifetime", &life)?;
    conn.execute(
        "UPDATE retained_secrets SET expires =
             CASE WHEN created > ?2 - ?1 THEN ?2 ELSE created + ?1 END",
        params![life, i64::MAX],
    )?;
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
    account: &str,
    peer: &str,
    fingerprint: &[u8],
    keyvalue: &[u8],
    seen_at: u64,
) -> Result<KeyObservation, StoreError> {
    let seen = db_time(seen_at)?;
    let existing: Option<(i64, bool, Option<String>)> = conn
        .query_row(
            "SELECT id, verified, petname FROM peer_keys WHERE account = ?1 AND fingerprint = ?2",
            params![account, fingerprint],
            |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
        )
        .optional()?;

    // Other keys this JID used before (ESN-51), most recently seen first.
    let mut stmt = conn.prepare_cached(
        "SELECT k.fingerprint FROM peer_key_jids j JOIN peer_keys k ON k.id = j.key_id
         WHERE k.account = ?1 AND j.peer = ?2 AND k.fingerprint <> ?3
         ORDER BY j.last_seen DESC, k.id DESC",
    )?;
    let previous_fingerprints = stmt
        .query_map(params![account, peer, fingerprint], |r| r.get(0))?
        .collect::<Result<Vec<Vec<u8>>, _>>()?;

    let (key_id, verified, petname, jids) = match existing {
        Some((id, verified, petname)) => {
            let mut stmt = conn.prepare_cached(
                "SELECT peer FROM peer_key_jids WHERE key_id = ?1 ORDER BY first_seen, rowid",
            )?;
            let jids = stmt
                .query_map([id], |r| r.get(0))?
                .collect::<Result<Vec<String>, _>>()?;
            (id, verified, petname, jids)
        }
        None => {
            conn.execute(
                "INSERT INTO peer_keys (account, fingerprint, keyvalue, first_seen)
                 VALUES (?1, ?2, ?3, ?4)",
                params![account, fingerprint, keyvalue, seen],
            )?;
            (conn.last_insert_rowid(), false, None, Vec::new())
        }
    };
    let bound_here = jids.iter().any(|j| j == peer);
    let other_jids: Vec<String> = jids.into_iter().filter(|j| j != peer).collect();

    conn.execute(
        "INSERT INTO peer_key_jids (key_id, peer, first_seen, last_seen) VALUES (?1, ?2, ?3, ?3)
         ON CONFLICT (key_id, peer) DO UPDATE SET last_seen = max(last_seen, excluded.last_seen)",
        params![key_id, peer, seen],
    )?;

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

fn update_peer_key(
    conn: &Connection,
    account: &str,
    fingerprint: &[u8],
    sql: &str,
    value: &dyn rusqlite::ToSql,
) -> Result<(), StoreError> {
    let n = conn.execute(sql, params![value, account, fingerprint])?;
    if n == 0 {
        return Err(StoreError::NotFound(format!("contact key of {account}")));
    }
    Ok(())
}

pub(crate) fn set_petname(
    conn: &Connection,
    account: &str,
    fingerprint: &[u8],
    petname: Option<&str>,
) -> Result<(), StoreError> {
    update_peer_key(
        conn,
        account,
        fingerprint,
        "UPDATE peer_keys SET petname = ?1 WHERE account = ?2 AND fingerprint = ?3",
        &petname,
    )
}

pub(crate) fn set_key_verified(
    conn: &Connection,
    account: &str,
    fingerprint: &[u8],
    verified: bool,
) -> Result<(), StoreError> {
    update_peer_key(
        conn,
        account,
        fingerprint,
        "UPDATE peer_keys SET verified = ?1 WHERE account = ?2 AND fingerprint = ?3",
        &verified,
    )
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
/// recently seen with it first), else all in order of first sighting.
pub(crate) fn peer_keys(
    conn: &Connection,
    account: &str,
    peer: Option<&str>,
) -> Result<Vec<PeerKey>, StoreError> {
    type Row = (i64, Vec<u8>, Vec<u8>, Option<String>, bool, i64);
    let row = |r: &rusqlite::Row<'_>| -> rusqlite::Result<Row> {
        Ok((
            r.get(0)?,
            r.get(1)?,
            r.get(2)?,
            r.get(3)?,
            r.get(4)?,
            r.get(5)?,
        ))
    };
    let keys: Vec<Row> = match peer {
        None => conn
            .prepare_cached(
                "SELECT id, fingerprint, keyvalue, petname, verified, first_seen FROM peer_keys
                 WHERE account = ?1 ORDER BY id",
            )?
            .query_map([account], row)?
            .collect::<Result<_, _>>()?,
        Some(peer) => conn
            .prepare_cached(
                "SELECT k.id, k.fingerprint, k.keyvalue, k.petname, k.verified, k.first_seen
                 FROM peer_keys k JOIN peer_key_jids j ON j.key_id = k.id
                 WHERE k.account = ?1 AND j.peer = ?2 ORDER BY j.last_seen DESC, k.id DESC",
            )?
            .query_map([account, peer], row)?
            .collect::<Result<_, _>>()?,
    };
    let mut jid_stmt = conn.prepare_cached(
        "SELECT peer, first_seen, last_seen FROM peer_key_jids WHERE key_id = ?1
         ORDER BY first_seen, rowid",
    )?;
    let mut out = Vec::with_capacity(keys.len());
    for (id, fingerprint, keyvalue, petname, verified, first_seen) in keys {
        let mut jids = Vec::new();
        for j in jid_stmt.query_map([id], |r| {
            Ok((
                r.get::<_, String>(0)?,
                r.get::<_, i64>(1)?,
                r.get::<_, i64>(2)?,
            ))
        })? {
            let (jid, first, last) = j?;
            jids.push(SeenJid {
                jid,
                first_seen: from_db_time(first)?,
                last_seen: from_db_time(last)?,
            });
        }
        out.push(PeerKey {
            id: PeerKeyId(id),
            fingerprint,
            keyvalue,
            petname,
            verified,
            first_seen: from_db_time(first_seen)?,
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
pub(crate) fn record_delivery(
    conn: &Connection,
    account: &str,
    peer: &str,
    message_id: &str,
) -> Result<bool, StoreError> {
    let inserted = conn.execute(
        "INSERT OR IGNORE INTO delivered_messages (account, peer, message_id) VALUES (?1, ?2, ?3)",
        params![account, peer, message_id],
    )?;
    if inserted == 0 {
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

pub(crate) fn set_sas_state(
    conn: &Connection,
    account: &str,
    peer: &str,
    client: &str,
    state: SasState,
    now: u64,
) -> Result<(), StoreError> {
    conn.execute(
        "INSERT INTO sas_states (account, peer, client, state, updated) VALUES (?1, ?2, ?3, ?4, ?5)
         ON CONFLICT (account, peer, client)
         DO UPDATE SET state = excluded.state, updated = excluded.updated",
        params![account, peer, client, state.as_str(), db_time(now)?],
    )?;
    Ok(())
}

fn sas_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<(String, String, String, i64)> {
    Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?))
}

fn sas_record(row: (String, String, String, i64)) -> Result<SasRecord, StoreError> {
    let (peer, client, state, updated) = row;
    Ok(SasRecord {
        state: SasState::parse(&state)
            .ok_or_else(|| StoreError::Corrupt(format!("SAS state {state:?}")))?,
        peer,
        client,
        updated: from_db_time(updated)?,
    })
}

pub(crate) fn sas_state(
    conn: &Connection,
    account: &str,
    peer: &str,
    client: &str,
) -> Result<Option<SasRecord>, StoreError> {
    conn.query_row(
        "SELECT peer, client, state, updated FROM sas_states
         WHERE account = ?1 AND peer = ?2 AND client = ?3",
        [account, peer, client],
        sas_row,
    )
    .optional()?
    .map(sas_record)
    .transpose()
}

pub(crate) fn sas_states(conn: &Connection, account: &str) -> Result<Vec<SasRecord>, StoreError> {
    let mut stmt = conn.prepare_cached(
        "SELECT peer, client, state, updated FROM sas_states WHERE account = ?1
         ORDER BY peer, client",
    )?;
    let rows = stmt.query_map([account], sas_row)?;
    let mut out = Vec::new();
    for row in rows {
        out.push(sas_record(row?)?);
    }
    Ok(out)
}

pub(crate) fn set_contact_profile(
    conn: &Connection,
    account: &str,
    peer: &str,
    profile: Option<&str>,
) -> Result<(), StoreError> {
    match profile {
        Some(profile) => conn.execute(
            "INSERT INTO contacts (account, peer, profile) VALUES (?1, ?2, ?3)
             ON CONFLICT (account, peer) DO UPDATE SET profile = excluded.profile",
            params![account, peer, profile],
        )?,
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
    account: &str,
) -> Result<Vec<(String, String)>, StoreError> {
    let mut stmt = conn.prepare_cached(
        "SELECT peer, profile FROM contacts WHERE account = ?1 AND profile IS NOT NULL
         ORDER BY peer",
    )?;
    Ok(stmt
        .query_map([account], |r| Ok((r.get(0)?, r.get(1)?)))?
        .collect::<Result<_, _>>()?)
}

pub(crate) fn contact_profile(
    conn: &Connection,
    account: &str,
    peer: &str,
) -> Result<Option<String>, StoreError> {
    Ok(conn
        .query_row(
            "SELECT profile FROM contacts WHERE account = ?1 AND peer = ?2",
            [account, peer],
            |r| r.get::<_, Option<String>>(0),
        )
        .optional()?
        .flatten())
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

/// Re-seals every secret under `new` (inside the caller's transaction).
pub(crate) fn reseal_all(
    conn: &Connection,
    old: &DataKey,
    new: &DataKey,
) -> Result<(), StoreError> {
    for cell in sealed_cells(conn)? {
        let plain = open_cell(old, &cell)?;
        let sealed = new.seal(&cell.aad, plain.expose())?;
        conn.execute(cell.key_sql, params![sealed, cell.rowid])?;
    }
    Ok(())
}

/// Full consistency check: SQLite's integrity and foreign-key checks, every
/// sealed value opens, and no client has more than two retained secrets.
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
