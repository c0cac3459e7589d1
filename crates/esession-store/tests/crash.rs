#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    reason = "test code"
)]
//! Crash test: a writer process (this test binary, re-executed) loops over
//! retained-secret, key and password updates and reports each commit on
//! stdout; it is killed with SIGKILL at random moments, and after every kill
//! the store must open, pass its consistency check, and hold every update the
//! writer reported as committed.

mod common;

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant, SystemTime};

use common::{assert_same_files, file_bytes, pass};
use esession::{RetainedSecret, TrustStore};
use esession_crypto::SecretBytes;
use esession_store::{KdfParams, Store, StoreError};

const CHILD_ENV: &str = "ESESSION_STORE_CRASH_WRITER";
const TEST_NAME: &str = "killing_the_writer_never_loses_or_corrupts_committed_state";
const ACCOUNT: &str = "me@example.org";
const PEER: &str = "bob@example.net";
const PASSPHRASE: &str = "crash test passphrase";
const KILLS: usize = 150;
/// Signing keys older than this many iterations are deleted.
const KEEP_KEYS: u64 = 3;

fn client(i: u64) -> String {
    format!("client{}", i % 3)
}
fn secret_for(i: u64) -> Vec<u8> {
    format!("retained secret number {i:08}").into_bytes()
}
fn public_for(i: u64) -> Vec<u8> {
    format!("public key {i:08}").into_bytes()
}
fn private_for(i: u64) -> Vec<u8> {
    format!("private key {i:08}").into_bytes()
}
fn oss_for(i: u64) -> Vec<u8> {
    format!("password {i:08}").into_bytes()
}

/// The public-key counters of the stored signing keys, with their private parts checked.
fn stored_keys(store: &Store) -> Vec<u64> {
    let mut out = Vec::new();
    for info in store.signing_keys(ACCOUNT).unwrap() {
        let text = String::from_utf8(info.public_key).unwrap();
        let n: u64 = text.trim_start_matches("public key ").parse().unwrap();
        let private = store.signing_key_private(ACCOUNT, info.id).unwrap();
        assert_eq!(private.expose(), private_for(n), "private key {n}");
        out.push(n);
    }
    out
}

/// The rest of iteration `i` after its retained secret: idempotent, so a
/// restarted writer can redo it.
fn finish_iteration(store: &Store, trust: &mut impl TrustStore, i: u64) {
    if i.is_multiple_of(2) {
        trust.confirm_retained_secret(PEER, &client(i)).unwrap();
        println!("@@confirm {i}");
    }
    if i.is_multiple_of(7) {
        trust.mark_verified(PEER, &client(i)).unwrap();
    }
    let keys = store.signing_keys(ACCOUNT).unwrap();
    if !keys.iter().any(|k| k.public_key == public_for(i)) {
        store
            .add_signing_key(
                ACCOUNT,
                "rsa",
                public_for(i),
                SecretBytes::new(private_for(i)),
            )
            .unwrap();
    }
    println!("@@key {i}");
    if let Some(old) = i.checked_sub(KEEP_KEYS)
        && let Some(k) = keys.iter().find(|k| k.public_key == public_for(old))
    {
        store.delete_signing_key(ACCOUNT, k.id).unwrap();
    }
    store
        .set_other_secret(ACCOUNT, PEER, SecretBytes::new(oss_for(i)))
        .unwrap();
    println!("@@oss {i}");
}

/// The writer: resumes after the newest stored retained secret and loops until killed.
fn writer(dir: &Path) -> ! {
    let store = Store::open(dir.join("trust.db"), pass(PASSPHRASE)).unwrap();
    let mut trust = store.account(ACCOUNT).unwrap();
    let start = trust
        .retained_secrets(PEER)
        .unwrap()
        .iter()
        .map(|s| s.created)
        .max()
        .unwrap_or(0);
    if start > 0 {
        finish_iteration(&store, &mut trust, start);
    }
    println!("@@ready {start}");
    let mut i = start;
    loop {
        i += 1;
        trust
            .store_retained_secret(
                PEER,
                RetainedSecret {
                    client: client(i),
                    secret: SecretBytes::new(secret_for(i)),
                    created: i,
                    verified: false,
                },
            )
            .unwrap();
        // Reported only after the commit returned: from here on it must survive.
        println!("@@rs {i}");
        finish_iteration(&store, &mut trust, i);
    }
}

/// The highest counter of each kind the writer reported as committed.
#[derive(Default, Debug, Clone, Copy)]
struct Reported {
    rs: u64,
    key: u64,
    oss: u64,
    lines: usize,
}

fn parse_reports(lines: &[String]) -> Reported {
    let mut r = Reported::default();
    for line in lines {
        let Some((_, report)) = line.split_once("@@") else {
            continue;
        };
        let Some((kind, n)) = report.split_once(' ') else {
            continue;
        };
        let Ok(n) = n.trim().parse::<u64>() else {
            continue;
        };
        match kind {
            "rs" => r.rs = r.rs.max(n),
            "key" => r.key = r.key.max(n),
            "oss" => r.oss = r.oss.max(n),
            _ => {}
        }
        r.lines += 1;
    }
    r
}

/// Opens the store after a kill and checks every invariant. Returns the
/// newest retained-secret counter.
fn check_after_kill(path: &Path, reported: Reported, previous: u64, round: usize) -> u64 {
    // The state right after a kill (maybe with a hot WAL): a wrong passphrase
    // must not change a byte, not even by checkpointing.
    let before = file_bytes(path);
    assert!(matches!(
        Store::open(path, pass("wrong passphrase")),
        Err(StoreError::WrongPassphrase)
    ));
    assert_same_files(
        &before,
        &file_bytes(path),
        &format!("round {round}: wrong passphrase after a kill"),
    );

    let store = Store::open(path, pass(PASSPHRASE))
        .unwrap_or_else(|e| panic!("round {round}: store does not open: {e}"));
    // integrity_check, foreign keys, every sealed value decrypts, <= 2 per client.
    store
        .check()
        .unwrap_or_else(|e| panic!("round {round}: check failed: {e}"));

    let trust = store.account(ACCOUNT).unwrap();
    let secrets = trust.retained_secrets(PEER).unwrap();
    let newest = secrets.iter().map(|s| s.created).max().unwrap_or(0);
    assert!(
        newest >= reported.rs,
        "round {round}: reported retained secret {} lost (newest {newest})",
        reported.rs
    );
    assert!(newest >= previous, "round {round}: counter went back");
    assert!(
        newest <= reported.rs.max(previous) + 1,
        "round {round}: more than one unreported commit"
    );
    // Newest first, each with its own bytes.
    let created: Vec<u64> = secrets.iter().map(|s| s.created).collect();
    let mut sorted = created.clone();
    sorted.sort_unstable_by(|a, b| b.cmp(a));
    assert_eq!(created, sorted, "round {round}: not newest first");
    for s in &secrets {
        assert_eq!(s.secret.expose(), secret_for(s.created), "round {round}");
        assert_eq!(s.client, client(s.created), "round {round}");
    }
    // Per client: exactly the secrets the sequence of updates leaves.
    for k in 0..3u64 {
        let mine: Vec<u64> = created.iter().copied().filter(|c| c % 3 == k).collect();
        let Some(n) = (1..=newest).rev().find(|i| i % 3 == k) else {
            assert!(mine.is_empty(), "round {round}");
            continue;
        };
        assert_eq!(mine.first(), Some(&n), "round {round}: newest of client{k}");
        let expected_len = if n <= 3 {
            1 // no predecessor
        } else if n % 2 == 1 {
            2 // never confirmed: it and its predecessor
        } else if n < newest {
            1 // confirmed
        } else {
            mine.len() // its confirm may or may not have happened yet
        };
        assert_eq!(
            mine.len(),
            expected_len,
            "round {round}: client{k} {mine:?}"
        );
        assert!(
            (1..=2).contains(&mine.len()),
            "round {round}: client{k} {mine:?}"
        );
        if mine.len() == 2 {
            assert_eq!(mine[1] + 3, n, "round {round}: predecessor of client{k}");
        }
    }

    // Signing keys: a contiguous run ending at the newest, none lost.
    let keys = stored_keys(&store);
    if let Some(&last) = keys.last() {
        assert!(
            last == newest || last + 1 == newest,
            "round {round}: keys {keys:?}"
        );
        let first = keys[0];
        assert_eq!(
            keys,
            (first..=last).collect::<Vec<_>>(),
            "round {round}: keys not contiguous"
        );
        assert!(
            first + KEEP_KEYS >= last,
            "round {round}: old keys kept {keys:?}"
        );
        assert!(
            first <= last.saturating_sub(KEEP_KEYS - 1).max(1),
            "round {round}: too few keys {keys:?}"
        );
    } else {
        assert!(newest <= 1, "round {round}: keys lost");
    }
    assert!(
        keys.last().copied().unwrap_or(0) >= reported.key,
        "round {round}: reported key {} lost",
        reported.key
    );

    // The password is the one of a committed iteration, never older than reported.
    if let Some(oss) = store.other_secret(ACCOUNT, PEER).unwrap() {
        let text = String::from_utf8(oss.expose().to_vec()).unwrap();
        let n: u64 = text.trim_start_matches("password ").parse().unwrap();
        assert_eq!(oss.expose(), oss_for(n));
        assert!(
            n >= reported.oss && n <= newest,
            "round {round}: password {n}"
        );
    } else {
        assert_eq!(reported.oss, 0, "round {round}: password lost");
    }
    newest
}

#[test]
fn killing_the_writer_never_loses_or_corrupts_committed_state() {
    if let Ok(dir) = std::env::var(CHILD_ENV) {
        writer(Path::new(&dir));
    }

    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("trust.db");
    drop(
        Store::create_with_params(
            &path,
            pass(PASSPHRASE),
            KdfParams::insecure_fast_for_tests(),
        )
        .unwrap(),
    );

    let seed = SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .unwrap()
        .subsec_nanos() as u64
        | 1;
    let mut rng = seed;
    let mut next_delay = || {
        // xorshift64
        rng ^= rng << 13;
        rng ^= rng >> 7;
        rng ^= rng << 17;
        Duration::from_millis(5 + rng % 76)
    };
    println!("crash test seed {seed}");

    let started = Instant::now();
    let mut newest = 0;
    let mut kills_after_commits = 0;
    let mut total_reports = 0;
    for round in 0..KILLS {
        let mut child = Command::new(std::env::current_exe().unwrap())
            .args(["--exact", TEST_NAME, "--nocapture", "--test-threads=1"])
            .env(CHILD_ENV, dir.path())
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let stdout = child.stdout.take().unwrap();
        let reader = std::thread::spawn(move || {
            BufReader::new(stdout)
                .lines()
                .map_while(Result::ok)
                .collect::<Vec<_>>()
        });
        let stderr = child.stderr.take().unwrap();
        let err_reader = std::thread::spawn(move || {
            BufReader::new(stderr)
                .lines()
                .map_while(Result::ok)
                .collect::<Vec<_>>()
        });
        std::thread::sleep(next_delay());
        if let Some(status) = child.try_wait().unwrap() {
            panic!(
                "round {round}: writer exited by itself ({status}): {:?}",
                err_reader.join().unwrap()
            );
        }
        child.kill().unwrap(); // SIGKILL
        child.wait().unwrap();
        let lines = reader.join().unwrap();
        drop(err_reader.join());
        let reported = parse_reports(&lines);
        if reported.lines > 0 {
            kills_after_commits += 1;
        }
        total_reports += reported.lines;
        newest = check_after_kill(&path, reported, newest, round);
    }
    println!(
        "crash test: {KILLS} kills ({kills_after_commits} after commits), \
         {total_reports} reported commits, newest counter {newest}, all consistent, {:?}",
        started.elapsed()
    );
    assert!(newest > 0, "the writer never committed anything");
    assert!(
        kills_after_commits * 2 >= KILLS,
        "most kills should land while the writer is writing"
    );
}
