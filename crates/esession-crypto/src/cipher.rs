//! The `crypt_algs` block ciphers in counter mode, with the XEP counter rules.
//!
//! CMN-05 / AMB-08 / AMB-09: the keystream block for counter value C is
//! `E(KC, CTRB(C))`; the first block of a message uses the current C; each full
//! or partial block consumes one value; C wraps modulo 2^128 and is never reset
//! between messages. Spare keystream is discarded.

use core::fmt;

use aes::{Aes128, Aes192, Aes256};
use cipher::{BlockCipherEncrypt, BlockSizeUser, InnerIvInit, KeyInit, StreamCipher, consts::U16};
use serpent::Serpent;
use twofish::Twofish;

use crate::CryptoError;
use crate::encoding::{Counter, blocks_for};

pub use esession_algorithms::CipherAlgorithm;

/// A keyed CTR cipher. The key schedule is zeroized on drop.
pub struct CtrCipher(Keyed);

/// Boxed (issue 16): each session holds only its own cipher's key schedule
/// (704 bytes for AES-128), not space for the largest one (976, AES-256).
enum Keyed {
    Aes128(Box<Aes128>),
    Aes192(Box<Aes192>),
    Aes256(Box<Aes256>),
    Twofish(Box<Twofish>),
    Serpent(Box<Serpent>),
    None,
}

impl CtrCipher {
    /// Keys `algorithm` with `key`, which must be exactly [`CipherAlgorithm::key_len`] bytes.
    pub fn new(algorithm: CipherAlgorithm, key: &[u8]) -> Result<Self, CryptoError> {
        if key.len() != algorithm.key_len() {
            return Err(CryptoError::InvalidKeyLength);
        }
        let bad = |_| CryptoError::InvalidKeyLength;
        let keyed = match algorithm {
            CipherAlgorithm::Aes128Ctr => {
                Keyed::Aes128(Box::new(Aes128::new_from_slice(key).map_err(bad)?))
            }
            CipherAlgorithm::Aes192Ctr => {
                Keyed::Aes192(Box::new(Aes192::new_from_slice(key).map_err(bad)?))
            }
            CipherAlgorithm::Aes256Ctr => {
                Keyed::Aes256(Box::new(Aes256::new_from_slice(key).map_err(bad)?))
            }
            CipherAlgorithm::Twofish128Ctr
            | CipherAlgorithm::Twofish192Ctr
            | CipherAlgorithm::Twofish256Ctr => {
                Keyed::Twofish(Box::new(Twofish::new_from_slice(key).map_err(bad)?))
            }
            CipherAlgorithm::Serpent128Ctr
            | CipherAlgorithm::Serpent192Ctr
            | CipherAlgorithm::Serpent256Ctr => {
                Keyed::Serpent(Box::new(Serpent::new_from_slice(key).map_err(bad)?))
            }
            CipherAlgorithm::None => Keyed::None,
        };
        Ok(Self(keyed))
    }

    /// Encrypts or decrypts `data` in place starting at `counter`, and advances
    /// `counter` by the number of blocks consumed (CMN-05). For `none` the data
    /// is untouched and the counter advances by one (ENC-06).
    pub fn apply(&self, counter: &mut Counter, data: &mut [u8]) {
        let start = *counter;
        match &self.0 {
            Keyed::Aes128(block) => ctr_xor(&**block, start, data),
            Keyed::Aes192(block) => ctr_xor(&**block, start, data),
            Keyed::Aes256(block) => ctr_xor(&**block, start, data),
            Keyed::Twofish(block) => ctr_xor(&**block, start, data),
            Keyed::Serpent(block) => ctr_xor(&**block, start, data),
            Keyed::None => {
                counter.advance(1);
                return;
            }
        }
        counter.advance(blocks_for(data.len()));
    }

    /// The continuous keystream of the deployed implementation (Gajim
    /// 0.12-0.16 on PyCrypto, reference-behaviour.md §10 item 4, fact 2):
    /// keystream block *i* is `E(KC, C+i)`, so the first block ever used after
    /// `counter` = C is C+1; `counter` always holds the last block generated,
    /// and `used` how many of that block's 16 keystream bytes were consumed
    /// (16: none left). Unused keystream of a partial last block is used first
    /// by the next call, so one stream runs across stanzas. The spare bytes are
    /// recomputed from `E(KC, C)` rather than stored. `used` values above 16
    /// count as 16. For `none` the data is untouched and the counter advances
    /// by one, as [`Self::apply`] does.
    pub fn apply_continuous(&self, counter: &mut Counter, used: &mut u8, data: &mut [u8]) {
        if matches!(self.0, Keyed::None) {
            counter.advance(1);
            return;
        }
        let mut offset = 0usize;
        let spare = 16usize.saturating_sub(usize::from(*used));
        if spare > 0 && !data.is_empty() {
            let mut block = counter.to_bytes();
            self.encrypt_block(&mut block);
            let take = spare.min(data.len());
            let start = 16 - spare;
            for (d, k) in data.iter_mut().zip(&block[start..start + take]) {
                *d ^= k;
            }
            block.fill(0);
            offset = take;
            *used = u8::try_from(start + take).unwrap_or(16);
        }
        let rest = &mut data[offset..];
        if rest.is_empty() {
            return;
        }
        let first = counter.advanced(1);
        match &self.0 {
            Keyed::Aes128(block) => ctr_xor(&**block, first, rest),
            Keyed::Aes192(block) => ctr_xor(&**block, first, rest),
            Keyed::Aes256(block) => ctr_xor(&**block, first, rest),
            Keyed::Twofish(block) => ctr_xor(&**block, first, rest),
            Keyed::Serpent(block) => ctr_xor(&**block, first, rest),
            Keyed::None => {}
        }
        let blocks = blocks_for(rest.len());
        counter.advance(blocks);
        let tail = rest.len() % 16;
        *used = if tail == 0 {
            16
        } else {
            u8::try_from(tail).unwrap_or(16)
        };
    }

    /// The raw block encryption `E(KC, block)`, for known-answer tests of the
    /// underlying block cipher. `none` returns the block unchanged.
    pub fn encrypt_block(&self, block: &mut [u8; 16]) {
        let block = block.into();
        match &self.0 {
            Keyed::Aes128(c) => c.encrypt_block(block),
            Keyed::Aes192(c) => c.encrypt_block(block),
            Keyed::Aes256(c) => c.encrypt_block(block),
            Keyed::Twofish(c) => c.encrypt_block(block),
            Keyed::Serpent(c) => c.encrypt_block(block),
            Keyed::None => {}
        }
    }
}

impl fmt::Debug for CtrCipher {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("CtrCipher(<redacted>)")
    }
}

fn ctr_xor<B>(block: &B, start: Counter, data: &mut [u8])
where
    B: BlockCipherEncrypt + BlockSizeUser<BlockSize = U16> + Clone,
{
    // `Ctr128BE` increments the whole 128-bit block as a big-endian integer,
    // modulo 2^128: exactly the full-width increment CMN-05 demands.
    let iv = start.to_bytes();
    let core = ctr::CtrCore::<B, ctr::flavors::Ctr128BE>::inner_iv_init(block.clone(), &iv.into());
    let mut stream = ctr::Ctr128BE::<B>::from_core(core);
    stream.apply_keystream(data);
}

#[cfg(test)]
mod tests {
    use super::*;

    fn manual_ctr(cipher: &CtrCipher, start: u128, data: &[u8]) -> Vec<u8> {
        let mut out = Vec::new();
        for (i, chunk) in data.chunks(16).enumerate() {
            let mut block = start.wrapping_add(i as u128).to_be_bytes();
            cipher.encrypt_block(&mut block);
            out.extend(chunk.iter().zip(block).map(|(d, k)| d ^ k));
        }
        out
    }

    #[test]
    fn names_round_trip() {
        for alg in CipherAlgorithm::CONFIDENTIAL
            .into_iter()
            .chain([CipherAlgorithm::None])
        {
            assert_eq!(CipherAlgorithm::from_name(alg.name()).unwrap(), alg);
        }
        assert!(CipherAlgorithm::from_name("aes128-cbc").is_err());
        assert!(CipherAlgorithm::from_name("blowfish-ctr").is_err());
    }

    #[test]
    fn rejects_wrong_key_length() {
        assert!(CtrCipher::new(CipherAlgorithm::Aes128Ctr, &[0; 32]).is_err());
        assert!(CtrCipher::new(CipherAlgorithm::Serpent256Ctr, &[0; 16]).is_err());
    }

    #[test]
    fn counter_wraps_inside_one_message() {
        // CMN-05: C = 2^128-1 -> the next block uses 0.
        let cipher = CtrCipher::new(CipherAlgorithm::Aes128Ctr, &[9; 16]).unwrap();
        let data = [0x5au8; 40];
        let mut counter = Counter::new(u128::MAX);
        let mut buf = data;
        cipher.apply(&mut counter, &mut buf);
        assert_eq!(buf.to_vec(), manual_ctr(&cipher, u128::MAX, &data));
        assert_eq!(counter.value(), 2);
    }

    #[test]
    fn none_cipher_leaves_data_and_advances_by_one() {
        // ENC-06: `none` advances C by 1 for 1 KB.
        let cipher = CtrCipher::new(CipherAlgorithm::None, &[]).unwrap();
        let mut data = vec![7u8; 1024];
        let mut counter = Counter::new(5);
        cipher.apply(&mut counter, &mut data);
        assert!(data.iter().all(|&b| b == 7));
        assert_eq!(counter.value(), 6);
    }

    /// PyCrypto's model, block by block: keystream block i = E(C+i), i >= 1,
    /// with the spare bytes of a partial block kept for the next call.
    struct PyCryptoModel {
        c: u128,
        spare: Vec<u8>,
    }

    impl PyCryptoModel {
        fn apply(&mut self, cipher: &CtrCipher, data: &[u8]) -> Vec<u8> {
            let mut out = Vec::new();
            for &b in data {
                if self.spare.is_empty() {
                    self.c = self.c.wrapping_add(1);
                    let mut block = self.c.to_be_bytes();
                    cipher.encrypt_block(&mut block);
                    self.spare = block.to_vec();
                }
                out.push(b ^ self.spare.remove(0));
            }
            out
        }
    }

    #[test]
    fn continuous_keystream_starts_at_c_plus_one_and_carries_spare_bytes() {
        // reference-behaviour.md fact 2, §10 item 4: 135 bytes then 20 bytes;
        // the second message starts with the 9 spare bytes of block C+9.
        let cipher = CtrCipher::new(CipherAlgorithm::Aes256Ctr, &[0x11; 32]).unwrap();
        let mut model = PyCryptoModel {
            c: 1000,
            spare: Vec::new(),
        };
        let (mut counter, mut used) = (Counter::new(1000), 16u8);
        let first = [0x41u8; 135];
        let mut buf = first;
        cipher.apply_continuous(&mut counter, &mut used, &mut buf);
        assert_eq!(buf.to_vec(), model.apply(&cipher, &first));
        assert_eq!((counter.value(), used), (1009, 7));
        // The first block is E(C+1), not E(C).
        let mut k1 = 1001u128.to_be_bytes();
        cipher.encrypt_block(&mut k1);
        assert_eq!(buf[0], 0x41 ^ k1[0]);
        let second = [0x42u8; 20];
        let mut buf = second;
        cipher.apply_continuous(&mut counter, &mut used, &mut buf);
        assert_eq!(buf.to_vec(), model.apply(&cipher, &second));
        let mut k9 = 1009u128.to_be_bytes();
        cipher.encrypt_block(&mut k9);
        assert_eq!(
            buf[0],
            0x42 ^ k9[7],
            "spare keystream of block C+9 comes first"
        );
        assert_eq!((counter.value(), used), (1010, 11));
        // Block-aligned input leaves nothing spare.
        let mut aligned = [0u8; 32];
        let (mut c, mut u) = (Counter::new(5), 16u8);
        cipher.apply_continuous(&mut c, &mut u, &mut aligned);
        assert_eq!((c.value(), u), (7, 16));
    }

    proptest::proptest! {
        #[test]
        fn continuous_keystream_matches_the_pycrypto_model(
            start in proptest::prelude::any::<u128>(),
            lens in proptest::collection::vec(0usize..70, 1..6),
        ) {
            let cipher = CtrCipher::new(CipherAlgorithm::Aes256Ctr, &[7; 32]).unwrap();
            let mut model = PyCryptoModel { c: start, spare: Vec::new() };
            let (mut counter, mut used) = (Counter::new(start), 16u8);
            for (i, len) in lens.into_iter().enumerate() {
                let data = vec![i as u8; len];
                let mut buf = data.clone();
                cipher.apply_continuous(&mut counter, &mut used, &mut buf);
                proptest::prop_assert_eq!(buf, model.apply(&cipher, &data));
                proptest::prop_assert_eq!(counter.value(), model.c);
            }
        }
    }

    proptest::proptest! {
        #[test]
        fn matches_blockwise_definition_for_every_cipher(
            start in proptest::prelude::any::<u128>(),
            data in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..100),
            which in 0usize..9,
        ) {
            let alg = CipherAlgorithm::CONFIDENTIAL[which];
            let key: Vec<u8> = (0..alg.key_len() as u8).collect();
            let cipher = CtrCipher::new(alg, &key).unwrap();
            let mut counter = Counter::new(start);
            let mut buf = data.clone();
            cipher.apply(&mut counter, &mut buf);
            proptest::prop_assert_eq!(&buf, &manual_ctr(&cipher, start, &data));
            proptest::prop_assert_eq!(counter.value(), start.wrapping_add(data.len().div_ceil(16) as u128));
            // Decryption is the same operation from the same counter.
            let mut back = Counter::new(start);
            cipher.apply(&mut back, &mut buf);
            proptest::prop_assert_eq!(buf, data);
        }
    }
}
