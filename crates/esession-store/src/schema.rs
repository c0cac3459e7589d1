//! The schema, its version (`PRAGMA user_version`) and the migrations list.
//!
//! Migration `n` takes a database from version `n - 1` to `n`. [`migrate`]
//! applies every pending one and sets the new version in one transaction, so an
//! interrupted upgrade leaves the old version intact. To add version 4: write
//! `fn v4`, append `Migration { to: 4, apply: v4 }` to [`MIGRATIONS`]; the
//! `meta` table is never changed incompatibly (it holds what unlocks the store:
//! version 3 only added a nullable column to it).
//!
//! Version 3 tags rows with the *current* definitions in `tags.rs`: a later
//! version that changes what a tag covers must re-tag in its own migration.

use rusqlite::{Connection, Transaction, TransactionBehavior};

use crate::seal::DataKey;
use crate::{StoreError, ops, tags};

/// One step of the migrations list.
#[derive(Clone, Copy)]
pub(crate) struct Migration {
    /// The version the database has after this step.
    pub(crate) to: u32,
    /// Runs inside the upgrade transaction; gets the data key so that a later
    /// step can re-seal secrets.
    pub(crate) apply: fn(&Transaction<'_>, &DataKey) -> Result<(), StoreError>,
}

/// Every migration, in order.
pub(crate) const MIGRATIONS: &[Migration] = &[
    Migration { to: 1, apply: v1 },
    Migration { to: 2, apply: v2 },
    Migration { to: 3, apply: v3 },
    Migration { to: 4, apply: v4 },
    Migration { to: 5, apply: v5 },
];

/// The schema version this build writes.
pub(crate) const CURRENT_VERSION: u32 = 5;

/// The newest version `migrations` reaches.
pub(crate) fn newest(migrations: &[Migration]) -> u32 {
    migrations.last().map_or(0, |m| m.to)
}

pub(crate) fn user_version(conn: &Connection) -> Result<u32, StoreError> {
    let v: i64 = conn.query_row("PRAGMA user_version", [], |row| row.get(0))?;
    u32::try_from(v).map_err(|_| StoreError::Corrupt(format!("schema version {v}")))
}

/// Applies the migrations above the current version inside `tx` (which the
/// caller commits). Returns the version found.
pub(crate) fn apply_pending(
    tx: &Transaction<'_>,
    key: &DataKey,
    migrations: &[Migration],
) -> Result<u32, StoreError> {
    let found = user_version(tx)?;
    let supported = newest(migrations);
    if found > supported {
        return Err(StoreError::TooNew { found, supported });
    }
    for migration in migrations.iter().filter(|m| m.to > found) {
        (migration.apply)(tx, key)?;
        // PRAGMA user_version is part of the transaction: rolled back with it.
        tx.pragma_update(None, "user_version", migration.to)?;
    }
    Ok(found)
}

/// Brings an existing store up to the newest version of `migrations`, all in
/// one IMMEDIATE transaction. Returns the version found.
pub(crate) fn migrate(
    conn: &mut Connection,
    key: &DataKey,
    migrations: &[Migration],
) -> Result<u32, StoreError> {
    // Cheap check first so that an up-to-date store takes no write lock.
    let found = user_version(conn)?;
    if found == newest(migrations) {
        return Ok(found);
    }
    let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
    let found = apply_pending(&tx, key, migrations)?;
    tx.commit()?;
    Ok(found)
}

/// Version 1: every table. Secret columns hold sealed values (see `seal`).
pub(crate) const V1_SQL: &str = "
CREATE TABLE meta (
    name  TEXT PRIMARY KEY NOT NULL,
    value ANY
) STRICT;

CREATE TABLE signing_keys (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    account     TEXT NOT NULL,
    algorithm   TEXT NOT NULL,
    public_key  BLOB NOT NULL,
    private_key BLOB NOT NULL,
    created     INTEGER NOT NULL
) STRICT;
CREATE INDEX signing_keys_account ON signing_keys (account, id);

CREATE TABLE peer_keys (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    account     TEXT NOT NULL,
    fingerprint BLOB NOT NULL,
    keyvalue    BLOB NOT NULL,
    petname     TEXT,
    verified    INTEGER NOT NULL DEFAULT 0 CHECK (verified IN (0, 1)),
    first_seen  INTEGER NOT NULL,
    UNIQUE (account, fingerprint)
) STRICT;

CREATE TABLE peer_key_jids (
    key_id     INTEGER NOT NULL REFERENCES peer_keys (id) ON DELETE CASCADE,
    peer       TEXT NOT NULL,
    first_seen INTEGER NOT NULL,
    last_seen  INTEGER NOT NULL,
    PRIMARY KEY (key_id, peer)
) STRICT;
CREATE INDEX peer_key_jids_peer ON peer_key_jids (peer);

CREATE TABLE retained_secrets (
    id       INTEGER PRIMARY KEY AUTOINCREMENT,
    account  TEXT NOT NULL,
    peer     TEXT NOT NULL,
    client   TEXT NOT NULL,
    secret   BLOB NOT NULL,
    created  INTEGER NOT NULL,
    expires  INTEGER NOT NULL,
    verified INTEGER NOT NULL DEFAULT 0 CHECK (verified IN (0, 1))
) STRICT;
CREATE INDEX retained_secrets_peer ON retained_secrets (account, peer, client, id);
CREATE INDEX retained_secrets_expires ON retained_secrets (expires);

CREATE TABLE other_secrets (
    account TEXT NOT NULL,
    peer    TEXT NOT NULL,
    secret  BLOB NOT NULL,
    PRIMARY KEY (account, peer)
) STRICT;

CREATE TABLE sas_states (
    account TEXT NOT NULL,
    peer    TEXT NOT NULL,
    client  TEXT NOT NULL,
    state   TEXT NOT NULL CHECK (state IN ('pending', 'confirmed', 'dismissed')),
    updated INTEGER NOT NULL,
    PRIMARY KEY (account, peer, client)
) STRICT;

CREATE TABLE contacts (
    account TEXT NOT NULL,
    peer    TEXT NOT NULL,
    profile TEXT,
    PRIMARY KEY (account, peer)
) STRICT;
";

fn v1(tx: &Transaction<'_>, _key: &DataKey) -> Result<(), StoreError> {
    tx.execute_batch(V1_SQL)?;
    Ok(())
}

/// Version 2 (issue 10): the ids of messages already shown, per contact, so a
/// message re-sent after its receipt was lost is never shown twice, even
/// across a crash. `seq` orders them for trimming to the newest few.
pub(crate) const V2_SQL: &str = "
CREATE TABLE delivered_messages (
    seq        INTEGER PRIMARY KEY AUTOINCREMENT,
    account    TEXT NOT NULL,
    peer       TEXT NOT NULL,
    message_id TEXT NOT NULL,
    UNIQUE (account, peer, message_id)
) STRICT;
CREATE INDEX delivered_messages_peer ON delivered_messages (account, peer, seq);
";

fn v2(tx: &Transaction<'_>, _key: &DataKey) -> Result<(), StoreError> {
    tx.execute_batch(V2_SQL)?;
    Ok(())
}

/// Version 3 (issue 11): a `tag` column on every table whose rows carry a
/// trust decision (see `tags.rs`), so that a row edited or moved without the
/// passphrase is detected when it is read. In `meta` only the
/// `retained_lifetime` row is tagged, hence a nullable column there.
pub(crate) const V3_SQL: &str = "
ALTER TABLE retained_secrets ADD COLUMN tag BLOB NOT NULL DEFAULT X'';
ALTER TABLE peer_keys ADD COLUMN tag BLOB NOT NULL DEFAULT X'';
ALTER TABLE peer_key_jids ADD COLUMN tag BLOB NOT NULL DEFAULT X'';
ALTER TABLE sas_states ADD COLUMN tag BLOB NOT NULL DEFAULT X'';
ALTER TABLE contacts ADD COLUMN tag BLOB NOT NULL DEFAULT X'';
ALTER TABLE delivered_messages ADD COLUMN tag BLOB NOT NULL DEFAULT X'';
ALTER TABLE meta ADD COLUMN tag BLOB;
";

/// Adds the tag columns and tags every existing row under `key`: the tags
/// vouch for the file as it is at the upgrade (an edit made before it cannot
/// be told apart). A store without a `retained_lifetime` row (only a
/// hand-made one) gets the default, so that from now on a missing row is
/// evidence of tampering.
///
/// It also writes a fresh key-check value (same key, new nonce): a handle an
/// older build opened before the upgrade then fails with
/// [`StoreError::Rekeyed`] at its next transaction instead of writing rows
/// without tags, and reopening with that build gives [`StoreError::TooNew`].
fn v3(tx: &Transaction<'_>, key: &DataKey) -> Result<(), StoreError> {
    tx.execute_batch(V3_SQL)?;
    if ops::meta_get_i64(tx, tags::LifetimeRow::NAME)?.is_none() {
        ops::meta_set(
            tx,
            tags::LifetimeRow::NAME,
            &ops::db_time(ops::DEFAULT_RETAINED_LIFETIME)?,
        )?;
    }
    tags::visit_all(tx, None, Some(key))?;
    if ops::meta_get_blob(tx, "key_check")?.is_some() {
        ops::meta_set(tx, "key_check", &key.key_check()?)?;
    }
    Ok(())
}

/// Version 4 (issue 13): the XEP-0187 option sets we published, kept until
/// we are back (OFF-03): the options as published, N_A, the expiry, and
/// every x sealed, with all of these in the sealed value's associated data.
pub(crate) const V4_SQL: &str = "
CREATE TABLE offline_option_sets (
    id        INTEGER PRIMARY KEY,
    account   TEXT NOT NULL,
    nonce     BLOB NOT NULL,
    options   TEXT NOT NULL,
    expires   INTEGER NOT NULL,
    exponents BLOB NOT NULL
) STRICT;
CREATE INDEX offline_option_sets_account ON offline_option_sets (account, id);
";

fn v4(tx: &Transaction<'_>, _key: &DataKey) -> Result<(), StoreError> {
    tx.execute_batch(V4_SQL)?;
    Ok(())
}

/// Version 5 (issue 14): the local history of sessions that may be logged
/// (`logging=may`; ENC-21: never an off-the-record one). Each body is sealed
/// under the data key with every other column of its row in the associated
/// data; who, when, which thread, which direction and whether the session
/// was verified stay readable, so that a history can be listed and
/// forgotten without the key.
pub(crate) const V5_SQL: &str = "
CREATE TABLE history (
    id       INTEGER PRIMARY KEY,
    account  TEXT NOT NULL,
    contact  TEXT NOT NULL,
    peer     TEXT NOT NULL,
    thread   TEXT NOT NULL,
    outgoing INTEGER NOT NULL,
    time     INTEGER NOT NULL,
    verified INTEGER NOT NULL,
    body     BLOB NOT NULL
) STRICT;
CREATE INDEX history_contact ON history (account, contact, time, id);
";

fn v5(tx: &Transaction<'_>, _key: &DataKey) -> Result<(), StoreError> {
    tx.execute_batch(V5_SQL)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key() -> DataKey {
        DataKey::from_key_material(&[1u8; 32], &[2u8; 16]).unwrap()
    }

    fn add_note(tx: &Transaction<'_>, _key: &DataKey) -> Result<(), StoreError> {
        tx.execute_batch("ALTER TABLE contacts ADD COLUMN note TEXT")?;
        Ok(())
    }

    fn failing(tx: &Transaction<'_>, _key: &DataKey) -> Result<(), StoreError> {
        tx.execute_batch("CREATE TABLE half_done (x INTEGER)")?;
        Err(StoreError::Invalid("migration failed on purpose".into()))
    }

    #[test]
    fn migrates_a_fresh_database_to_the_current_version() {
        let mut conn = Connection::open_in_memory().unwrap();
        assert_eq!(migrate(&mut conn, &key(), MIGRATIONS).unwrap(), 0);
        assert_eq!(user_version(&conn).unwrap(), CURRENT_VERSION);
        assert_eq!(newest(MIGRATIONS), CURRENT_VERSION);
        // Running again changes nothing.
        assert_eq!(
            migrate(&mut conn, &key(), MIGRATIONS).unwrap(),
            CURRENT_VERSION
        );
    }

    #[test]
    fn applies_only_the_pending_migrations_and_keeps_data() {
        let mut conn = Connection::open_in_memory().unwrap();
        migrate(&mut conn, &key(), MIGRATIONS).unwrap();
        conn.execute(
            "INSERT INTO contacts (account, peer, profile) VALUES ('a@x', 'b@y', 'gajim')",
            [],
        )
        .unwrap();
        let with_v6 = [
            Migration { to: 1, apply: v1 },
            Migration { to: 2, apply: v2 },
            Migration { to: 3, apply: v3 },
            Migration { to: 4, apply: v4 },
            Migration { to: 5, apply: v5 },
            Migration {
                to: 6,
                apply: add_note,
            },
        ];
        assert_eq!(migrate(&mut conn, &key(), &with_v6).unwrap(), 5);
        assert_eq!(user_version(&conn).unwrap(), 6);
        let (profile, note): (String, Option<String>) = conn
            .query_row("SELECT profile, note FROM contacts", [], |r| {
                Ok((r.get(0)?, r.get(1)?))
            })
            .unwrap();
        assert_eq!(profile, "gajim");
        assert_eq!(note, None);
    }

    #[test]
    fn a_failing_migration_leaves_the_old_version_untouched() {
        let mut conn = Connection::open_in_memory().unwrap();
        migrate(&mut conn, &key(), MIGRATIONS).unwrap();
        let broken = [
            Migration { to: 1, apply: v1 },
            Migration { to: 2, apply: v2 },
            Migration { to: 3, apply: v3 },
            Migration { to: 4, apply: v4 },
            Migration { to: 5, apply: v5 },
            Migration {
                to: 6,
                apply: add_note,
            },
            Migration {
                to: 7,
                apply: failing,
            },
        ];
        assert!(migrate(&mut conn, &key(), &broken).is_err());
        assert_eq!(user_version(&conn).unwrap(), CURRENT_VERSION);
        let tables: i64 = conn
            .query_row(
                "SELECT count(*) FROM sqlite_master WHERE name = 'half_done'",
                [],
                |r| r.get(0),
            )
            .unwrap();
        assert_eq!(tables, 0);
        let note_column: i64 = conn
            .query_row(
                "SELECT count(*) FROM pragma_table_info('contacts') WHERE name = 'note'",
                [],
                |r| r.get(0),
            )
            .unwrap();
        assert_eq!(note_column, 0, "v6 rolled back with v7");
    }

    #[test]
    fn version_1_gains_the_delivered_messages_table() {
        let mut conn = Connection::open_in_memory().unwrap();
        migrate(&mut conn, &key(), &MIGRATIONS[..1]).unwrap();
        assert_eq!(user_version(&conn).unwrap(), 1);
        assert_eq!(migrate(&mut conn, &key(), &MIGRATIONS[..2]).unwrap(), 1);
        assert_eq!(user_version(&conn).unwrap(), 2);
        let tables: i64 = conn
            .query_row(
                "SELECT count(*) FROM sqlite_master WHERE name = 'delivered_messages'",
                [],
                |r| r.get(0),
            )
            .unwrap();
        assert_eq!(tables, 1);
    }

    #[test]
    fn refuses_a_newer_database() {
        let mut conn = Connection::open_in_memory().unwrap();
        conn.pragma_update(None, "user_version", 7).unwrap();
        assert!(matches!(
            migrate(&mut conn, &key(), MIGRATIONS),
            Err(StoreError::TooNew {
                found: 7,
                supported: CURRENT_VERSION
            })
        ));
    }
}
