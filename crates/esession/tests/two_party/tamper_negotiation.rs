//! Every `<field/>` of each of the four negotiation messages is changed in
//! flight, and the outcome is checked against what the requirements prescribe
//! (AMB-52 for who refuses with which condition; ESN-10 for forgetting).
//!
//! The fields are not hard-coded: each test first records a clean run, lists
//! the `<field var=...>`s of the message, and runs every mutation of every
//! field it finds. A field without expectations (say, one added to the
//! protocol later) fails the test.
//!
//! Why most changes are caught where they are:
//! * message 1 is MACed as form_A in mac_A (ESN-28), which Bob checks on
//!   message 3 (ESN-32): whatever Bob accepts in an altered offer still fails
//!   there, with feature-not-implemented (AMB-52);
//! * message 2 is checked field by field by Alice (ESN-25/26, AMB-52:
//!   not-acceptable); values that change keys or nonces fail at Bob on
//!   message 3; the rest of form_B is MACed in mac_B (ESN-38), which Alice
//!   checks on message 4 (ESN-41) - Bob, in the 4-message flow, has already
//!   established by then, and drops the session when Alice's refusal arrives
//!   before any stanza of hers (ESN-10);
//! * messages 3 and 4: any problem is feature-not-implemented (AMB-52).
//!
//! Legitimately harmless changes: white space between fields (CMN-06 drops
//! it from NORM) and an `xml:lang` attribute (AMB-48: not part of NORM).

use esession::Error;
use esession::ssn::ErrorCondition;
use esession_wire::minidom::rxml::{Namespace, NcName};
use esession_wire::minidom::{Element, Node};
use esession_wire::{ns, xml};

use crate::harness::{
    Pair, Side, delete_field, duplicate_field, edit_fields, field, field_values, field_vars,
    flip_base64, map_values, set_values, stanza_error, with_field,
};

use ErrorCondition::{FeatureNotImplemented as Fni, NotAcceptable as Na, ServiceUnavailable as Su};
use Side::{Alice, Bob};

/// Seed of every run in this module: each case replays the same random values.
const SEED: u64 = 0x7a3b;

/// Fields whose values are Base64 (CMN-02).
const BASE64_FIELDS: &[&str] = &[
    "my_nonce", "dhhashes", "dhkeys", "nonce", "counter", "rshashes", "srshash", "identity", "mac",
];

/// A change to one field of a message in flight.
#[derive(Clone, Copy, Debug)]
enum Mutation {
    /// The field is removed.
    Delete,
    /// The field appears twice.
    Duplicate,
    /// Base64 fields: one character of the first value changed (still valid
    /// Base64); other fields: every value and option replaced by an unknown token.
    Corrupt,
    /// The values (or options) in reverse order.
    Reverse,
    /// The values (options, in an offer's list fields) replaced by these.
    Set(&'static [&'static str]),
    /// White space inserted before the field: dropped by NORM (CMN-06).
    Whitespace,
    /// An `xml:lang` attribute on the field: not part of NORM (AMB-48).
    XmlLang,
}

/// What a case must end in.
#[derive(Clone, PartialEq, Eq, Debug)]
enum Outcome {
    /// The change is harmless: both sides established with equal SAS.
    Established,
    /// `by` refused message `message` (1-4) with a `type='error'` stanza
    /// carrying `condition` and naming `fields`.
    Refused {
        by: Side,
        message: usize,
        condition: ErrorCondition,
        fields: Vec<String>,
    },
    /// `by` took the change for the peer declining (SSN-07) or cancelling
    /// (SSN-12): no error stanza, `NegotiationFailed(Declined)`.
    Declined { by: Side },
    /// Anything else (the description says what).
    Other(String),
}

fn refused(by: Side, message: usize, condition: ErrorCondition, fields: &[&str]) -> Outcome {
    Outcome::Refused {
        by,
        message,
        condition,
        fields: fields.iter().map(|f| (*f).to_owned()).collect(),
    }
}

/// ESN-32 via ESN-28: Bob's mac_A check over form_A/form_A2 (or his nonce or
/// commitment check) fails on message 3.
fn bob_rejects_message_3() -> Outcome {
    refused(Bob, 3, Fni, &[])
}

/// ESN-41 via ESN-38: Alice's check of Bob's identity (mac_B over form_B and
/// form_B2, M_B, the nonce) fails on message 4.
fn alice_rejects_message_4() -> Outcome {
    refused(Alice, 4, Fni, &[])
}

/// Expectations for message 1, the offer, as Bob (and later Alice) judge it.
fn offer_cases(var: &str) -> Option<Vec<(Mutation, Outcome)>> {
    use Mutation::*;
    let bob = |condition, fields: &[&str]| refused(Bob, 1, condition, fields);
    // Bob took a default for a field the offer lacked and so answered without
    // it; Alice misses it in message 2 (AMB-52: not-acceptable naming it).
    let alice_misses = |fields: &[&str]| refused(Alice, 2, Na, fields);
    let mut cases = vec![
        (Whitespace, Outcome::Established),
        (XmlLang, Outcome::Established),
        // Strict parsing (practice 5): a repeated var makes the form malformed.
        (Duplicate, bob(Na, &[])),
    ];
    let specific = match var {
        // AMB-52: an unknown (or missing) FORM_TYPE gets service-unavailable.
        "FORM_TYPE" => vec![(Delete, bob(Su, &[])), (Corrupt, bob(Su, &[]))],
        "accept" => vec![
            (Delete, bob(Na, &["accept"])),
            // Not a boolean: the form does not parse (SSN-02).
            (Corrupt, bob(Na, &[])),
            (Set(&["0"]), bob(Na, &["accept"])),
            // Same meaning, other bytes: form_A differs (ESN-28).
            (Set(&["true"]), bob_rejects_message_3()),
        ],
        "logging" => vec![
            // ARC-03: absent means `may`; Bob's answer then lacks the field.
            (Delete, alice_misses(&["logging"])),
            (Corrupt, bob(Na, &["logging"])),
            // Another valid preference order: Bob picks `mustnot`, which Alice
            // offered, but the offer is MACed (ESN-28): not harmless.
            (Reverse, bob_rejects_message_3()),
        ],
        "disclosure" => vec![
            (Delete, bob(Na, &["disclosure"])),
            (Corrupt, bob(Na, &["disclosure"])),
            // ESN-54: only `never` is agreed.
            (Set(&["enabled"]), bob(Na, &["disclosure"])),
            (Set(&["enabled", "never"]), bob_rejects_message_3()),
        ],
        "security" => vec![
            (Delete, bob(Na, &["security"])),
            (Corrupt, bob(Na, &["security"])),
            // ESN-11: plain sessions are off by default.
            (Set(&["c2s"]), bob(Na, &["security"])),
            (Set(&["c2s", "e2e"]), bob_rejects_message_3()),
        ],
        "modp" => vec![
            (Delete, bob(Na, &["modp"])),
            (Corrupt, bob(Na, &["modp"])),
            // AMB-22: groups 3 and 4 are EC2N, never MODP.
            (Set(&["3", "4"]), bob(Na, &["modp"])),
            // AMB-51: one He per option; the count no longer matches.
            (Set(&["1"]), bob(Na, &["dhhashes"])),
            // Bob picks group 2 with the He at index 0 (group 1's): ESN-31 fails.
            (Reverse, bob_rejects_message_3()),
        ],
        "crypt_algs" => vec![
            (Delete, alice_misses(&["crypt_algs"])),
            // SIM-02 / ESN-09.
            (Corrupt, bob(Na, &["crypt_algs"])),
            (Set(&["rot13-ctr"]), bob(Na, &["crypt_algs"])),
            (Reverse, bob_rejects_message_3()),
        ],
        "hash_algs" => vec![
            (Delete, alice_misses(&["hash_algs"])),
            (Corrupt, bob(Na, &["hash_algs"])),
            // ESN-05: sha1/md5 are not accepted.
            (Set(&["sha1", "md5"]), bob(Na, &["hash_algs"])),
            (Reverse, bob_rejects_message_3()),
        ],
        "compress" => vec![
            (Delete, alice_misses(&["compress"])),
            (Corrupt, bob(Na, &["compress"])),
            (Set(&["lzw"]), bob(Na, &["compress"])),
            (Reverse, bob_rejects_message_3()),
        ],
        "stanzas" => vec![
            (Delete, bob(Na, &["stanzas"])),
            (Corrupt, bob(Na, &["stanzas"])),
            (Set(&["presence"]), bob(Na, &["stanzas"])),
            // AMB-29: Bob answers the subset he supports; the offer is MACed.
            (Set(&["message", "presence"]), bob_rejects_message_3()),
        ],
        "init_pubkey" | "resp_pubkey" => vec![
            (Delete, alice_misses(&[static_var(var)])),
            (Corrupt, bob(Na, &[static_var(var)])),
            // SIM-04 [IMPL]: without `none` identification, not-acceptable on the field.
            (Set(&["key", "hash"]), bob(Na, &[static_var(var)])),
        ],
        "ver" => vec![
            (Delete, bob(Na, &["ver"])),
            (Corrupt, bob(Na, &["ver"])),
            // AMB-03: only 1.0.
            (Set(&["1.3", "1.2"]), bob(Na, &["ver"])),
        ],
        "rekey_freq" => vec![
            // Bob's default (2^32-1) leaves the field out of his answer.
            (Delete, alice_misses(&["rekey_freq"])),
            (Corrupt, bob(Na, &["rekey_freq"])),
            // ESN-05: 1..2^32-1.
            (Set(&["0"]), bob(Na, &["rekey_freq"])),
            (Set(&["100"]), bob_rejects_message_3()),
        ],
        "my_nonce" => vec![
            (Delete, bob(Na, &["my_nonce"])),
            // Bob echoes the altered N_A; Alice's nonce check fails (AMB-52).
            (Corrupt, refused(Alice, 2, Na, &["nonce"])),
            // AMB-40: 3 bytes is below the 8-byte minimum.
            (Set(&["AAAA"]), bob(Na, &["my_nonce"])),
        ],
        "sas_algs" => vec![
            (Delete, alice_misses(&["sas_algs"])),
            (Corrupt, bob(Na, &["sas_algs"])),
        ],
        "dhhashes" => vec![
            // AMB-51: no He per option.
            (Delete, bob(Na, &["dhhashes"])),
            // ESN-31: SHA256(e) differs from the committed He.
            (Corrupt, bob_rejects_message_3()),
            (Reverse, bob_rejects_message_3()),
            (Set(&["not base64!"]), bob(Na, &["dhhashes"])),
        ],
        _ => return None,
    };
    cases.extend(specific);
    Some(cases)
}

/// Expectations for message 2, Bob's answer, as Alice (and later Bob) judge it.
fn answer_cases(var: &str) -> Option<Vec<(Mutation, Outcome)>> {
    use Mutation::*;
    let alice = |fields: &[&str]| refused(Alice, 2, Na, fields);
    let mut cases = vec![
        (Whitespace, Outcome::Established),
        (XmlLang, Outcome::Established),
        (Duplicate, alice(&[])),
    ];
    let field_missing_or_bad =
        |var: &'static str| vec![(Delete, alice(&[var])), (Corrupt, alice(&[var]))];
    let specific = match var {
        "FORM_TYPE" => field_missing_or_bad("FORM_TYPE"),
        "accept" => vec![
            (Delete, alice(&["accept"])),
            (Corrupt, alice(&["accept"])),
            // SSN-07: a decline, not an error.
            (Set(&["0"]), Outcome::Declined { by: Alice }),
            // Same meaning, other bytes: form_B is MACed in mac_B (ESN-38).
            (Set(&["true"]), alice_rejects_message_4()),
        ],
        "logging" => {
            let mut c = field_missing_or_bad("logging");
            // ESN-25 passes (Alice offered it), but form_B is MACed (ESN-38).
            c.push((Set(&["mustnot"]), alice_rejects_message_4()));
            c
        }
        "disclosure" => {
            let mut c = field_missing_or_bad("disclosure");
            c.push((Set(&["enabled"]), alice(&["disclosure"])));
            c
        }
        "security" => {
            let mut c = field_missing_or_bad("security");
            c.push((Set(&["c2s"]), alice(&["security"])));
            c
        }
        "modp" => vec![
            // Without a group, d cannot be read either.
            (Delete, alice(&["modp", "dhkeys"])),
            (Corrupt, alice(&["modp", "dhkeys"])),
            // Alice uses group 2: e no longer matches Bob's He (ESN-31).
            (Set(&["2"]), bob_rejects_message_3()),
        ],
        "crypt_algs" => {
            let mut c = field_missing_or_bad("crypt_algs");
            // Different cipher keys: ID_A decrypts to garbage at Bob (ESN-32).
            c.push((Set(&["aes256-ctr"]), bob_rejects_message_3()));
            c
        }
        "hash_algs" => {
            let mut c = field_missing_or_bad("hash_algs");
            // Different K (ESN-16).
            c.push((Set(&["whirlpool"]), bob_rejects_message_3()));
            c
        }
        "compress" => {
            let mut c = field_missing_or_bad("compress");
            c.push((Set(&["zlib"]), alice_rejects_message_4()));
            c
        }
        "stanzas" => {
            let mut c = field_missing_or_bad("stanzas");
            // ESN-25: Alice offered only message.
            c.push((Set(&["message", "presence"]), alice(&["stanzas"])));
            c
        }
        "init_pubkey" | "resp_pubkey" => {
            let v = static_var(var);
            let mut c = field_missing_or_bad(v);
            c.push((Set(&["key"]), alice(&[v])));
            c
        }
        "ver" => {
            let mut c = field_missing_or_bad("ver");
            c.push((Set(&["1.3"]), alice(&["ver"])));
            c
        }
        "rekey_freq" => {
            let mut c = field_missing_or_bad("rekey_freq");
            c.push((Set(&["0"]), alice(&["rekey_freq"])));
            // ESN-14 allows any value >= Alice's: only mac_B catches it.
            c.push((Set(&["4294967295"]), alice_rejects_message_4()));
            c
        }
        "my_nonce" => vec![
            (Delete, alice(&["my_nonce"])),
            // Alice echoes N_B' in message 3; Bob's nonce check fails (AMB-52).
            (Corrupt, bob_rejects_message_3()),
            (Set(&["AAAA"]), alice(&["my_nonce"])),
        ],
        "sas_algs" => field_missing_or_bad("sas_algs"),
        "dhkeys" => vec![
            (Delete, alice(&["dhkeys"])),
            // Another valid d: different K, M_A fails at Bob (ESN-32).
            (Corrupt, bob_rejects_message_3()),
            // ESN-26: 1 < d < p-1, else not-acceptable.
            (Set(&["AQ=="]), alice(&["dhkeys"])),
        ],
        "nonce" => field_missing_or_bad("nonce"),
        "counter" => vec![
            (Delete, alice(&["counter"])),
            // Another C_A: M_A over CTRB(C_A) fails at Bob (ESN-24, ESN-32).
            (Corrupt, bob_rejects_message_3()),
        ],
        _ => return None,
    };
    cases.extend(specific);
    Some(cases)
}

/// Expectations for message 3, Alice's completion: everything is
/// feature-not-implemented from Bob (AMB-52), except a cancel (SSN-12).
fn completion_cases(var: &str) -> Option<Vec<(Mutation, Outcome)>> {
    use Mutation::*;
    if ![
        "FORM_TYPE",
        "accept",
        "nonce",
        "dhkeys",
        "rshashes",
        "identity",
        "mac",
    ]
    .contains(&var)
    {
        return None;
    }
    let mut cases = vec![
        (Whitespace, Outcome::Established),
        (XmlLang, Outcome::Established),
        (Delete, bob_rejects_message_3()),
        (Duplicate, bob_rejects_message_3()),
        (Corrupt, bob_rejects_message_3()),
    ];
    match var {
        "accept" => {
            cases.push((Set(&["0"]), Outcome::Declined { by: Bob }));
            cases.push((Set(&["true"]), bob_rejects_message_3()));
        }
        "rshashes" => cases.push((Reverse, bob_rejects_message_3())),
        _ => {}
    }
    Some(cases)
}

/// Expectations for message 4, Bob's `<init/>`: everything is
/// feature-not-implemented from Alice (AMB-52).
fn final_cases(var: &str) -> Option<Vec<(Mutation, Outcome)>> {
    use Mutation::*;
    if !["FORM_TYPE", "nonce", "srshash", "identity", "mac"].contains(&var) {
        return None;
    }
    Some(vec![
        (Whitespace, Outcome::Established),
        (XmlLang, Outcome::Established),
        (Delete, alice_rejects_message_4()),
        (Duplicate, alice_rejects_message_4()),
        (Corrupt, alice_rejects_message_4()),
    ])
}

/// Field names as `&'static str` (the case tables hold static slices).
fn static_var(var: &str) -> &'static str {
    ["init_pubkey", "resp_pubkey"]
        .into_iter()
        .find(|v| *v == var)
        .expect("a known field")
}

/// Applies `mutation` to field `var` of a negotiation stanza.
fn mutate(stanza: &mut Element, var: &str, mutation: Mutation) {
    let original = field(stanza, var).expect("the field");
    let has_options = original.has_child("option", ns::DATA_FORMS);
    match mutation {
        Mutation::Delete => delete_field(stanza, var),
        Mutation::Duplicate => duplicate_field(stanza, var),
        Mutation::Corrupt if BASE64_FIELDS.contains(&var) => {
            map_values(stanza, var, |i, old| {
                if i == 0 {
                    flip_base64(old)
                } else {
                    old.to_owned()
                }
            });
        }
        Mutation::Corrupt => map_values(stanza, var, |i, _| format!("x-bogus-{i}")),
        Mutation::Reverse => {
            let values = field_values(&original);
            assert!(values.len() >= 2, "{var} has one value");
            let reversed: Vec<&str> = values.iter().rev().map(String::as_str).collect();
            set_values(stanza, var, &reversed, has_options);
        }
        Mutation::Set(values) => set_values(stanza, var, values, has_options),
        Mutation::Whitespace => edit_fields(stanza, var, |nodes, i| {
            nodes.insert(i, Node::Text("\n    \t".to_owned()));
        }),
        Mutation::XmlLang => with_field(stanza, var, |field| {
            field.attrs_mut().insert(
                Namespace::xml().clone(),
                NcName::try_from("lang").unwrap(),
                "en".to_owned(),
            );
        }),
    }
}

/// Reads what happened in a tampered run, checking the invariants every
/// failure must satisfy on the way; violations come back as `Other`.
fn observe(pair: &Pair) -> Outcome {
    let alice_up = pair.alice.established().len();
    let bob_up = pair.bob.established().len();
    let errors = pair.error_stanzas();
    let mut problems: Vec<String> = Vec::new();
    let outcome = match errors.as_slice() {
        [] => {
            let declined: Vec<Side> = [Alice, Bob]
                .into_iter()
                .filter(|s| pair.party(*s).failures().contains(&&Error::Declined))
                .collect();
            match (alice_up, bob_up, declined.as_slice()) {
                (1, 1, []) => {
                    if pair.info(Alice).sas != pair.info(Bob).sas {
                        problems.push("ESN-33: SAS differ".into());
                    }
                    Outcome::Established
                }
                (0, 0, [by]) => Outcome::Declined { by: *by },
                _ => Outcome::Other(format!(
                    "no error stanza; established A{alice_up} B{bob_up}; declined {declined:?}"
                )),
            }
        }
        [(index, by, stanza)] => {
            let error = stanza_error(stanza).expect("an error stanza");
            let condition = error.condition.expect("a defined condition");
            // AMB-30: types as listed, no <text/>; SSN-08: the thread echoed.
            let expected_type = if condition == Na { "modify" } else { "cancel" };
            if error.error_type.as_deref() != Some(expected_type) {
                problems.push(format!("AMB-30: error type {:?}", error.error_type));
            }
            if error.has_text {
                problems.push("AMB-30: <text/> present".into());
            }
            if error.thread.as_deref() != crate::harness::thread_of(&pair.log[0].1).as_deref() {
                problems.push("SSN-08: thread not echoed".into());
            }
            // The refusing side reports what it sent; the other side what it got.
            let sent = Error::Refused {
                condition,
                fields: error.fields.clone(),
            };
            if pair.party(*by).failures() != [&sent] {
                problems.push(format!("{by:?} failures: {:?}", pair.party(*by).failures()));
            }
            let message = *index;
            let peer = pair.party(by.other());
            // ESN-10: the other side learns of the refusal - for message 4 too:
            // Bob, established but with nothing from Alice yet, drops the session.
            let got = Error::PeerError {
                condition: Some(condition),
                fields: error.fields.clone(),
            };
            if peer.failures() != [&got] {
                problems.push(format!("{:?} failures: {:?}", by.other(), peer.failures()));
            }
            // ESN-10: no session on the refusing side; in the 4-message flow Bob
            // has established once he sent message 4, and only then.
            if alice_up != 0 || bob_up != usize::from(message == 4) {
                problems.push(format!("established A{alice_up} B{bob_up}"));
            }
            let thread = crate::harness::thread_of(&pair.log[0].1).unwrap_or_default();
            for side in [Alice, Bob] {
                if pair.session_info(side, &thread).is_some() {
                    problems.push(format!("ESN-10: {side:?} still has the session"));
                }
            }
            Outcome::Refused {
                by: *by,
                message,
                condition,
                fields: error.fields,
            }
        }
        more => Outcome::Other(format!("{} error stanzas", more.len())),
    };
    if problems.is_empty() {
        outcome
    } else {
        Outcome::Other(format!("{outcome:?} but {}", problems.join("; ")))
    }
}

/// Runs every mutation of every field of message `message` (1-4) against its
/// expectations; panics listing all mismatches.
fn run_message(message: usize, cases_for: impl Fn(&str) -> Option<Vec<(Mutation, Outcome)>>) {
    let mut clean = Pair::new(SEED);
    clean.handshake();
    let reference = clean.log[message - 1].1.clone();
    let vars = field_vars(&reference);
    assert!(vars.len() >= 5, "message {message} fields: {vars:?}");
    let mut mismatches = Vec::new();
    let mut count = 0;
    for var in &vars {
        let Some(cases) = cases_for(var) else {
            mismatches.push(format!(
                "message {message}: no expectations for field {var}"
            ));
            continue;
        };
        for (mutation, expected) in cases {
            let mut pair = Pair::new(SEED);
            let mut changed = false;
            pair.negotiate_with(|n, stanza| {
                if n == message - 1 {
                    let before = xml::serialize(stanza, "").unwrap();
                    mutate(stanza, var, mutation);
                    changed = xml::serialize(stanza, "").unwrap() != before;
                }
            });
            assert!(
                changed,
                "message {message} {var} {mutation:?} changed nothing"
            );
            let observed = observe(&pair);
            count += 1;
            println!("message {message} {var:>12} {mutation:?} -> {observed:?}");
            if observed != expected {
                mismatches.push(format!(
                    "message {message} {var} {mutation:?}: expected {expected:?}, got {observed:?}"
                ));
            }
        }
    }
    assert!(count >= vars.len() * 4, "{count} cases");
    assert!(mismatches.is_empty(), "{}", mismatches.join("\n"));
}

#[test]
fn every_field_of_the_offer_is_protected() {
    run_message(1, offer_cases);
}

#[test]
fn every_field_of_the_answer_is_protected() {
    run_message(2, answer_cases);
}

#[test]
fn every_field_of_the_completion_is_protected() {
    run_message(3, completion_cases);
}

#[test]
fn every_field_of_the_final_message_is_protected() {
    run_message(4, final_cases);
}

#[test]
fn a_tampered_final_message_does_not_break_the_retained_secret_chain() {
    // AMB-57: Bob established and stored a new secret when he sent message 4;
    // Alice refused it and kept the old one. Bob keeps the old one beside the
    // new until Alice proves the final keys, so the next session still matches.
    // ESN-10: Alice's refusal reaches Bob before any stanza of hers, so Bob
    // drops the session; his retained-secret claim was never proven.
    let mut pair = Pair::new(SEED + 1);
    pair.handshake();
    let mut bob_sessions = pair.bob.established().len();
    let thread = pair.negotiate_with(|n, stanza| {
        if n == 3 {
            mutate(stanza, "mac", Mutation::Corrupt);
        }
    });
    bob_sessions += 1;
    assert_eq!(pair.alice.established().len(), 1, "Alice refused message 4");
    assert_eq!(pair.bob.established().len(), bob_sessions);
    assert!(
        !pair.info(Side::Bob).authenticated_by_retained_secret,
        "AMB-57: provisional"
    );
    assert_eq!(
        pair.bob.failures(),
        [&Error::PeerError {
            condition: Some(Fni),
            fields: Vec::new()
        }],
        "ESN-10"
    );
    assert!(pair.bob.retained_proofs().is_empty());
    assert!(pair.session_info(Side::Bob, &thread).is_none());
    assert_eq!(
        pair.bob
            .manager
            .send_text(&Pair::id(Side::Bob, &thread), "into the void")
            .unwrap_err(),
        Error::UnknownSession
    );
    // The next genuine session is still authenticated on both sides.
    let next = pair.handshake();
    assert!(pair.info(Side::Alice).authenticated_by_retained_secret);
    assert_eq!(pair.alice_proves(&next), Some(false), "AMB-57");
    assert!(
        pair.session_info(Side::Bob, &next)
            .unwrap()
            .authenticated_by_retained_secret
    );
}

#[test]
fn a_tampered_completion_in_a_second_session_keeps_the_chain() {
    // ESN-10: Bob refused message 3 and forgot the attempt; neither side
    // stored anything, so the chain is intact for the next session.
    let mut pair = Pair::new(SEED + 2);
    pair.handshake();
    pair.negotiate_with(|n, stanza| {
        if n == 2 {
            mutate(stanza, "rshashes", Mutation::Corrupt);
        }
    });
    assert_eq!(pair.alice.established().len(), 1);
    assert_eq!(pair.bob.established().len(), 1);
    let next = pair.handshake();
    assert!(pair.info(Side::Alice).authenticated_by_retained_secret);
    // AMB-57: at Bob once Alice's first message proves it.
    assert!(!pair.info(Side::Bob).authenticated_by_retained_secret);
    assert_eq!(pair.alice_proves(&next), Some(false));
    assert!(
        pair.session_info(Side::Bob, &next)
            .unwrap()
            .authenticated_by_retained_secret
    );
}
