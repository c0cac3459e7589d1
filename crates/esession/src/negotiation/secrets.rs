//! The secrets mixed into K_final besides K (ESN-36): the retained secret the
//! initiator claims in `rshashes` (ESN-35), and the other shared secret, a
//! password agreed out of band (AMB-58).

use esession_crypto::kdf::retained_secret_hash;
use esession_crypto::{HashAlgorithm, SecretBytes, ct_eq};
use unicode_normalization::UnicodeNormalization as _;

use super::{Context, RetainedMatch, unexpired};
use crate::event::BrokenChain;
use crate::trust::RetainedSecret;

/// ESN-35's extended search looks at no more than this many secrets retained
/// with JIDs other than the initiator's, the newest first. One HMAC per secret
/// (compared with every `rshashes` value) keeps a hostile offer from costing
/// more than this many HMACs; the newest secrets are the likely ones.
pub(crate) const MAX_SECRETS_OF_OTHER_JIDS: usize = 256;

/// ESN-35 at the responder: the newest unexpired secret whose
/// HMAC(HASH, N_A, RS) is among `rshashes`, first among the secrets retained
/// with the initiator's bare JID (MUST), then among those of every other JID
/// (SHOULD: the initiator may be using another JID to hide from third
/// parties), bounded by [`MAX_SECRETS_OF_OTHER_JIDS`].
///
/// A secret found under another JID is used like any other: it authenticates
/// the session once the initiator proves K_final (AMB-57), and the new
/// retained secret is stored under the JID in use now; the old one stays
/// where it was.
///
/// Also says whether the chain with the initiator broke: we hold unexpired
/// secrets for its bare JID and it claimed none of ours (issue 10).
pub(crate) fn responder_match(
    ctx: &mut Context<'_>,
    peer_bare: &str,
    hash: HashAlgorithm,
    n_a: &[u8],
    rshashes: &[Vec<u8>],
) -> (Option<RetainedMatch>, Option<BrokenChain>) {
    let claimed = |rs: &RetainedSecret| {
        let expected = retained_secret_hash(hash, n_a, &rs.secret);
        rshashes.iter().any(|h| ct_eq(h, &expected))
    };
    let own = ctx.trust.retained_secrets(peer_bare);
    let own: Vec<RetainedSecret> = ctx
        .read(own)
        .into_iter()
        .filter(|rs| unexpired(ctx.config, ctx.clock, rs.created))
        .collect();
    let broken = broken_chain(&own);
    let found = own.into_iter().find(|rs| claimed(rs));
    if rshashes.is_empty() {
        return (None, broken);
    }
    let found = match found {
        Some(rs) => Some(rs),
        None => {
            let since = ctx
                .clock
                .now_unix()
                .saturating_sub(ctx.config.retained_secret_lifetime);
            let others = ctx.trust.retained_secrets_of_other_peers(
                peer_bare,
                since,
                MAX_SECRETS_OF_OTHER_JIDS,
            );
            ctx.read(others)
                .into_iter()
                .take(MAX_SECRETS_OF_OTHER_JIDS)
                .map(|(_, rs)| rs)
                .filter(|rs| unexpired(ctx.config, ctx.clock, rs.created))
                .find(|rs| claimed(rs))
        }
    };
    match found {
        Some(rs) => (
            Some(RetainedMatch {
                secret: rs.secret,
                verified: rs.verified,
            }),
            None,
        ),
        None => (None, broken),
    }
}

/// The chain that breaks if the peer proves none of `held` (the unexpired
/// secrets we retained with its bare JID): `None` when we hold none, a first
/// contact (issue 10, XEP-0116 §7).
pub(crate) fn broken_chain(held: &[RetainedSecret]) -> Option<BrokenChain> {
    if held.is_empty() {
        return None;
    }
    let mut clients: Vec<String> = held.iter().map(|rs| rs.client.clone()).collect();
    clients.sort();
    clients.dedup();
    Some(BrokenChain {
        chain_verified: held.iter().any(|rs| rs.verified),
        clients,
    })
}

/// ESN-36, AMB-58: the other shared secret for `peer_bare` as OSS bytes: the
/// UTF-8 of the password after Unicode NFC normalisation, nothing trimmed, so
/// that "é" typed precomposed on one side and decomposed on the other gives
/// the same keys. A stored secret that is not UTF-8 is used as it is.
pub(crate) fn other_shared_secret(ctx: &mut Context<'_>, peer_bare: &str) -> Option<SecretBytes> {
    let stored = ctx.trust.other_secret(peer_bare);
    ctx.read(stored).map(nfc)
}

/// NFC of UTF-8 secret bytes; other bytes unchanged.
fn nfc(secret: SecretBytes) -> SecretBytes {
    let Ok(text) = core::str::from_utf8(secret.expose()) else {
        return secret;
    };
    if unicode_normalization::is_nfc(text) {
        return secret;
    }
    // NFC at most triples the length of UTF-8 text (UAX #15, "Stream-Safe
    // Text Format" expansion factors): with all of it reserved at once the
    // string never reallocates, so no unzeroized copy of the password is left
    // behind in freed memory (beyond the normaliser's small internal buffer).
    let mut normalised = String::with_capacity(text.len().saturating_mul(3));
    normalised.extend(text.nfc());
    SecretBytes::new(normalised.into_bytes())
}

#[cfg(test)]
#[allow(clippy::unwrap_used, reason = "test code")]
mod tests {
    use super::*;

    #[test]
    fn nfc_composes_a_decomposed_password_amb_58() {
        // U+0065 U+0301 (e + combining acute) is U+00E9 in NFC (UAX #15).
        let decomposed = nfc(SecretBytes::from_slice("cafe\u{301}".as_bytes()));
        assert_eq!(decomposed.expose(), "caf\u{e9}".as_bytes());
        let precomposed = nfc(SecretBytes::from_slice("caf\u{e9}".as_bytes()));
        assert_eq!(precomposed.expose(), "caf\u{e9}".as_bytes());
    }

    #[test]
    fn nfc_keeps_white_space_and_ascii_amb_58() {
        for password in [" secret ", "secret\n", "\tpass word", "ASCII only"] {
            assert_eq!(
                nfc(SecretBytes::from_slice(password.as_bytes())).expose(),
                password.as_bytes()
            );
        }
    }

    #[test]
    fn nfc_leaves_bytes_that_are_not_utf8_alone() {
        let raw = [0xff, 0x65, 0xcc];
        assert_eq!(nfc(SecretBytes::from_slice(&raw)).expose(), raw);
    }

    #[test]
    fn nfc_of_a_long_combining_sequence_fits_the_reserved_capacity() {
        // U+0344 (combining greek dialytika tonos) decomposes to two marks;
        // Hangul jamo compose: whatever the input, the output fits in 3x.
        let text: String = "\u{1100}\u{1161}\u{11a8}\u{344}\u{344}e\u{301}\u{323}".repeat(50);
        let out = nfc(SecretBytes::from_slice(text.as_bytes()));
        assert!(out.len() <= text.len() * 3);
        let expected: String = text.nfc().collect();
        assert_eq!(out.expose(), expected.as_bytes());
    }
}
