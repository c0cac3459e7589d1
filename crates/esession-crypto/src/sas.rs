//! The `sas28x5` short authentication string (ESN-33, AMB-21).

use crate::kdf::labels::SHORT_AUTHENTICATION_STRING;
use crate::{HashAlgorithm, Hashing};

/// The 28 characters of sas28x5, digit value 0 first.
pub const SAS28_ALPHABET: &[u8; 28] = b"acdefghikmopqruvwxy123456789";

pub use esession_algorithms::SasAlgorithm;

/// sas28x5: h = HASH(M_A | form_B | "Short Authentication String"); the last
/// three bytes of h as a big-endian integer, written as five base-28 digits,
/// most significant first, padded with `a` (ESN-33, AMB-21).
pub fn sas28x5(hash: HashAlgorithm, m_a: &[u8], form_b: &[u8]) -> String {
    let h = hash.digest(&[m_a, form_b, SHORT_AUTHENTICATION_STRING]);
    let tail = &h[h.len() - 3..];
    let value = u32::from_be_bytes([0, tail[0], tail[1], tail[2]]);
    sas28x5_of_value(value)
}

/// sas28x5 as the deployed implementation computed it (Gajim
/// `crypto.sas_28x5`, reference-behaviour.md §8, fact 9): the same hash and
/// digits, most significant first, but without zero padding: leading `a`
/// digits are dropped (value 0 gives `a`), so the result may be shorter than
/// five characters.
pub fn sas28x5_unpadded(hash: HashAlgorithm, m_a: &[u8], form_b: &[u8]) -> String {
    let h = hash.digest(&[m_a, form_b, SHORT_AUTHENTICATION_STRING]);
    let tail = &h[h.len() - 3..];
    sas28x5_of_value_unpadded(u32::from_be_bytes([0, tail[0], tail[1], tail[2]]))
}

/// The base-28 digits of `value`, most significant first, without padding.
pub fn sas28x5_of_value_unpadded(value: u32) -> String {
    let padded = sas28x5_of_value(value);
    let trimmed = padded.trim_start_matches('a');
    if trimmed.is_empty() {
        "a".to_owned()
    } else {
        trimmed.to_owned()
    }
}

/// Five base-28 digits of `value` (< 2^24 < 28^5), most significant first.
pub fn sas28x5_of_value(mut value: u32) -> String {
    let mut digits = [b'a'; 5];
    for digit in digits.iter_mut().rev() {
        *digit = SAS28_ALPHABET[(value % 28) as usize];
        value /= 28;
    }
    digits.iter().map(|&b| char::from(b)).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sas_of_zero_is_all_a() {
        // ESN-33 test: v = 0 -> aaaaa.
        assert_eq!(sas28x5_of_value(0), "aaaaa");
    }

    #[test]
    fn sas_of_max_value_is_9kiui() {
        // ESN-33 test: v = 16777215 -> 9kiui.
        assert_eq!(sas28x5_of_value(16_777_215), "9kiui");
    }

    #[test]
    fn small_values_are_padded_on_the_left() {
        assert_eq!(sas28x5_of_value(1), "aaaac");
        assert_eq!(sas28x5_of_value(28), "aaaca");
    }

    #[test]
    fn unpadded_sas_drops_leading_a_digits() {
        // reference-behaviour.md §8: no zero padding; n = 0 gives "a".
        assert_eq!(sas28x5_of_value_unpadded(0), "a");
        assert_eq!(sas28x5_of_value_unpadded(1), "c");
        assert_eq!(sas28x5_of_value_unpadded(28), "ca");
        assert_eq!(sas28x5_of_value_unpadded(614_655), "9999");
        assert_eq!(sas28x5_of_value_unpadded(614_656), "caaaa");
        assert_eq!(sas28x5_of_value_unpadded(16_777_215), "9kiui");
    }

    #[test]
    fn sas_uses_last_three_bytes_of_hash() {
        let h = HashAlgorithm::Sha256.digest(&[b"M", b"F", b"Short Authentication String"]);
        let v = u32::from_be_bytes([0, h[29], h[30], h[31]]);
        assert_eq!(
            sas28x5(HashAlgorithm::Sha256, b"M", b"F"),
            sas28x5_of_value(v)
        );
    }
}
