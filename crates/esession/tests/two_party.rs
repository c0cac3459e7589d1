#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    reason = "test code"
)]
//! Two in-memory parties end to end (style practice 16): Alice and Bob run the
//! whole protocol through the router of `harness`, which can alter, drop,
//! duplicate and reorder stanzas in flight.
//!
//! | module | what |
//! |---|---|
//! | `archiving` | off the record: the policy's offer and answer (ARC-03/04), `mustnot` only with the archive confirmed off (ARC-07, SSN-03), refusals and policy changes (ARC-05) |
//! | `normal` | a clean run: SAS, messages, threads, retained secrets (AMB-57), padding (ENC-04), termination |
//! | `tamper_negotiation` | every field of messages 1-4 changed in flight (AMB-52) |
//! | `tamper_messages` | `<c/>` altered, replayed, reordered, dropped (ENC-12/13, AMB-53) |
//! | `mitm` | Mallory relays with her own DH towards each side (ESN-33, ESN-35..41) |
//! | `misuse` | API misuse and protocol edge cases (SSN-07..11, ESN-08, ESN-53, SIM-02, AMB-22/54, ENC-02/03) |
//! | `errors` | bounces of encrypted stanzas (ENC-02/03), late refusal of message 4 (ESN-10) |
//! | `matrix` | every cipher × hash × compression, groups 1/2/5/14 (ESN-05; 15-18 in `slow_groups`, marked slow) |
//! | `stanza_kinds` | presence and iq in sessions, broadcast presence, unagreed kinds, tampering (ENC-01..03, AMB-26), unavailable presence (SSN-16) |
//! | `renegotiation` | renegotiate=0 and `continue` inside an ESession (SSN-13/14, AMB-39) |
//! | `timeouts` | negotiation timeouts with an injected, shared clock (ESN-10) |
//! | `pubkeys` | `key`/`hash`/`none` identification with RSA and DSA, key alerts (ESN-17..32, ESN-49..52, AMB-43) |
//! | `three_message` | the 3-message SIGMA-I negotiation (ESN-03, ESN-08, ESN-12..15, ESN-23, ESN-27..29) |
//! | `offers` | who gets answered and what an offer may agree: presence subscriptions (SSN-09, ESN-07), plain sessions (ESN-11), disclosure (ESN-53), peer labels (SSN-18), wrappers (AMB-04) |
//! | `shared_secrets` | retained secrets of other JIDs (ESN-35), the other shared secret's NFC (AMB-58) |
//! | `continuity` | issue 10: retained-secret answer in `Established`, the broken-chain alarm, verify/distrust, encrypted receipts, lost sessions, connection reset |
//! | `offline` | XEP-0187's signed option set as Alice builds it before going offline (OFF-02..05, OFF-18, AMB-34/75) |
//! | `rekey` | XEP-0200 rekeying and old-MAC-key publication (ENC-08, ENC-10, ENC-11, ENC-14..20, AMB-27/28/55/56), also with iq errors carrying two `<c/>` (ENC-03, proposed AMB-63) and in 3-message sessions |

mod harness;

mod two_party {
    mod archiving;
    mod continuity;
    mod errors;
    mod limits;
    mod matrix;
    mod misuse;
    mod mitm;
    mod normal;
    mod offers;
    mod offline;
    mod pubkeys;
    mod rekey;
    mod renegotiation;
    mod shared_secrets;
    mod slow_groups;
    mod stanza_kinds;
    mod tamper_messages;
    mod tamper_negotiation;
    mod three_message;
    mod timeouts;
}
