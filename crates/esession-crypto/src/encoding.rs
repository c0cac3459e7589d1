//! Integer encodings used inside MACs, hashes and form values.
//!
//! * `MPI(v)`: big-endian bytes without leading zero octets (CMN-01, AMB-14).
//! * `CTRB(C)`: a block-cipher counter as exactly n/8 big-endian bytes (AMB-10).

use crate::CryptoError;

/// Strips leading zero octets: the MPI encoding of CMN-01 (zero encodes as no bytes).
pub fn mpi(big_endian: &[u8]) -> &[u8] {
    let first = big_endian
        .iter()
        .position(|&b| b != 0)
        .unwrap_or(big_endian.len());
    &big_endian[first..]
}

/// Width of every block-cipher counter in bits: all ciphers ESessions define
/// have 128-bit blocks (ESN-05), and the `none` cipher keeps the same width.
pub const COUNTER_BITS: u32 = 128;

/// A CTR-mode block counter `C`: an n-bit value that wraps modulo 2^n (CMN-05).
#[derive(Clone, Copy, PartialEq, Eq, Debug, Default)]
pub struct Counter(u128);

impl Counter {
    /// The counter with value `value`.
    pub const fn new(value: u128) -> Self {
        Self(value)
    }

    /// The counter's integer value.
    pub const fn value(self) -> u128 {
        self.0
    }

    /// `CTRB(C)`: exactly 16 big-endian bytes, the form used in every MAC and in the
    /// `counter` form field (AMB-10).
    pub const fn to_bytes(self) -> [u8; 16] {
        self.0.to_be_bytes()
    }

    /// The minimal big-endian bytes of C, as the deployed implementation
    /// encoded it (Gajim `encode_mpi`, reference-behaviour.md §5): no leading
    /// zero octets, and zero as the single octet `00`.
    pub fn to_minimal_bytes(self) -> Vec<u8> {
        let bytes = self.0.to_be_bytes();
        match mpi(&bytes) {
            [] => vec![0],
            minimal => minimal.to_vec(),
        }
    }

    /// Parses a received counter value: at most n/8 bytes, big-endian, shorter
    /// values are left-padded with zeros (AMB-10 "accept <= n/8").
    pub fn from_wire(bytes: &[u8]) -> Result<Self, CryptoError> {
        if bytes.len() > 16 {
            return Err(CryptoError::InvalidCounter);
        }
        let mut full = [0u8; 16];
        full[16 - bytes.len()..].copy_from_slice(bytes);
        Ok(Self(u128::from_be_bytes(full)))
    }

    /// `C XOR 2^(n-1)`: the responder's counter derived from the initiator's (ESN-13).
    pub const fn flip_top_bit(self) -> Self {
        Self(self.0 ^ (1u128 << 127))
    }

    /// Advances by `blocks`, wrapping modulo 2^128 (CMN-05).
    pub const fn advance(&mut self, blocks: u128) {
        self.0 = self.0.wrapping_add(blocks);
    }

    /// The value after advancing by `blocks`.
    pub const fn advanced(self, blocks: u128) -> Self {
        Self(self.0.wrapping_add(blocks))
    }
}

/// Number of counter values a message of `len` bytes consumes: one per full or
/// partial 16-byte block (AMB-09).
pub const fn blocks_for(len: usize) -> u128 {
    len.div_ceil(16) as u128
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mpi_strips_only_leading_zero_octets() {
        assert_eq!(mpi(&[0, 0, 1, 0]), &[1, 0]);
        assert_eq!(mpi(&[0x80, 0]), &[0x80, 0]);
        assert_eq!(mpi(&[0, 0]), &[] as &[u8]);
        assert_eq!(mpi(&[]), &[] as &[u8]);
    }

    #[test]
    fn counter_bytes_are_fixed_width_even_with_zero_top_octet() {
        // AMB-10 test: C_A = 0x00ff..ff keeps its leading zero octet.
        let c = Counter::new(u128::MAX >> 8);
        let bytes = c.to_bytes();
        assert_eq!(bytes[0], 0);
        assert!(bytes[1..].iter().all(|&b| b == 0xff));
        assert_eq!(Counter::from_wire(&bytes[1..]).unwrap(), c);
        assert_eq!(Counter::from_wire(&bytes).unwrap(), c);
    }

    #[test]
    fn minimal_counter_bytes_drop_leading_zero_octets_and_keep_one_for_zero() {
        // reference-behaviour.md §5 encode_mpi: minimal, 0 -> 00.
        assert_eq!(Counter::new(0).to_minimal_bytes(), vec![0]);
        assert_eq!(Counter::new(0x0102).to_minimal_bytes(), vec![1, 2]);
        let top_zero = Counter::new(u128::MAX >> 8);
        assert_eq!(top_zero.to_minimal_bytes(), vec![0xff; 15]);
        assert_eq!(Counter::new(u128::MAX).to_minimal_bytes(), vec![0xff; 16]);
    }

    #[test]
    fn rejects_counter_longer_than_block() {
        assert!(Counter::from_wire(&[0u8; 17]).is_err());
    }

    #[test]
    fn responder_counter_flips_top_bit() {
        // ESN-13 test: C_A = 0 -> C_B = 0x80 then 15 zero bytes.
        let c_b = Counter::new(0).flip_top_bit();
        let mut expected = [0u8; 16];
        expected[0] = 0x80;
        assert_eq!(c_b.to_bytes(), expected);
    }

    #[test]
    fn counter_wraps_modulo_2_pow_128() {
        // CMN-05 test: C = 2^128 - 1 -> next 0.
        let mut c = Counter::new(u128::MAX);
        c.advance(1);
        assert_eq!(c.value(), 0);
    }

    #[test]
    fn partial_blocks_consume_a_whole_counter_value() {
        // CMN-05 test: 17 bytes advance C by 2.
        assert_eq!(blocks_for(17), 2);
        assert_eq!(blocks_for(16), 1);
        assert_eq!(blocks_for(1), 1);
        assert_eq!(blocks_for(0), 0);
    }
}
