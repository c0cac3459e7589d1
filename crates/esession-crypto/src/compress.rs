//! The `compress` algorithms (ENC-05): `none` and `zlib` (RFC 1950).
//!
//! zlib keeps one stream per direction for the whole session and ends each
//! stanza with a sync flush, so every stanza decompresses on arrival. `lzw`
//! is refused: ECMA-151 is not implemented (the negotiation answers
//! not-acceptable).
//!
//! A zlib context is large (about 300 KB to compress, 40 KB to decompress
//! with the pure-Rust backend), so each side is created on first use
//! (issue 11): a session in which one direction never carries a stanza
//! holds nothing for it.

use flate2::{Compress, Decompress, FlushCompress, FlushDecompress, Status};

use crate::CryptoError;

pub use esession_algorithms::CompressionAlgorithm;

/// One direction's zlib stream: not yet needed, or live.
enum Lazy<T> {
    /// `none`: nothing to keep.
    Identity,
    /// `zlib`, before the first stanza in this direction.
    Unused,
    /// `zlib`, after it.
    Live(Box<T>),
}

impl<T> Lazy<T> {
    fn new(algorithm: CompressionAlgorithm) -> Self {
        match algorithm {
            CompressionAlgorithm::None => Self::Identity,
            CompressionAlgorithm::Zlib => Self::Unused,
        }
    }

    /// The stream, created by `create` on first use; `None` for `none`.
    fn get(&mut self, create: impl FnOnce() -> T) -> Option<&mut T> {
        if matches!(self, Self::Unused) {
            *self = Self::Live(Box::new(create()));
        }
        match self {
            Self::Live(stream) => Some(stream),
            Self::Identity | Self::Unused => None,
        }
    }

    fn is_identity(&self) -> bool {
        matches!(self, Self::Identity)
    }
}

/// The compressing side of one direction.
pub struct Compressor(Lazy<Compress>);

impl Compressor {
    /// A stream for `algorithm` (allocated when the first stanza is compressed).
    pub fn new(algorithm: CompressionAlgorithm) -> Self {
        Self(Lazy::new(algorithm))
    }

    /// Compresses one stanza's content and sync-flushes the stream.
    pub fn compress(&mut self, input: &[u8]) -> Result<Vec<u8>, CryptoError> {
        if self.0.is_identity() {
            return Ok(input.to_vec());
        }
        self.compress_owned(input.to_vec())
    }

    /// As [`Self::compress`], taking ownership: `none` returns `input` without copying.
    pub fn compress_owned(&mut self, input: Vec<u8>) -> Result<Vec<u8>, CryptoError> {
        let Some(stream) = self
            .0
            .get(|| Compress::new(flate2::Compression::default(), true))
        else {
            return Ok(input);
        };
        let input = input.as_slice();
        let start = stream.total_in();
        let mut out = Vec::with_capacity(input.len() / 2 + 64);
        loop {
            let consumed =
                usize::try_from(stream.total_in() - start).map_err(|_| CryptoError::Compression)?;
            let rest = input.get(consumed..).ok_or(CryptoError::Compression)?;
            if out.len() == out.capacity() {
                out.reserve(out.capacity().max(64));
            }
            stream
                .compress_vec(rest, &mut out, FlushCompress::Sync)
                .map_err(|_| CryptoError::Compression)?;
            let consumed =
                usize::try_from(stream.total_in() - start).map_err(|_| CryptoError::Compression)?;
            // The flush is complete once all input is taken and the output was not filled.
            if consumed == input.len() && out.len() < out.capacity() {
                return Ok(out);
            }
        }
    }
}

/// The decompressing side of one direction.
pub struct Decompressor(Lazy<Decompress>);

impl Decompressor {
    /// A stream for `algorithm` (allocated when the first stanza arrives).
    pub fn new(algorithm: CompressionAlgorithm) -> Self {
        Self(Lazy::new(algorithm))
    }

    /// Decompresses one stanza. Output beyond `max_len` bytes is an error, so a
    /// hostile peer cannot make us allocate without bound (a "zip bomb").
    pub fn decompress(&mut self, input: &[u8], max_len: usize) -> Result<Vec<u8>, CryptoError> {
        if self.0.is_identity() {
            if input.len() > max_len {
                return Err(CryptoError::DecompressedTooLarge);
            }
            return Ok(input.to_vec());
        }
        self.decompress_owned(input.to_vec(), max_len)
    }

    /// As [`Self::decompress`], taking ownership: `none` returns `input` without copying.
    pub fn decompress_owned(
        &mut self,
        input: Vec<u8>,
        max_len: usize,
    ) -> Result<Vec<u8>, CryptoError> {
        let Some(stream) = self.0.get(|| Decompress::new(true)) else {
            if input.len() > max_len {
                return Err(CryptoError::DecompressedTooLarge);
            }
            return Ok(input);
        };
        let input = input.as_slice();
        let start = stream.total_in();
        let mut out: Vec<u8> = Vec::with_capacity(
            input
                .len()
                .saturating_mul(2)
                .clamp(64, max_len.saturating_add(1)),
        );
        loop {
            let consumed = usize::try_from(stream.total_in() - start)
                .map_err(|_| CryptoError::Decompression)?;
            let rest = input.get(consumed..).ok_or(CryptoError::Decompression)?;
            if out.len() == out.capacity() {
                if out.len() > max_len {
                    return Err(CryptoError::DecompressedTooLarge);
                }
                let room = (max_len + 1 - out.len()).min(out.capacity().max(64));
                out.reserve_exact(room);
            }
            let before = (stream.total_in(), out.len());
            let status = stream
                .decompress_vec(rest, &mut out, FlushDecompress::Sync)
                .map_err(|_| CryptoError::Decompression)?;
            if out.len() > max_len {
                return Err(CryptoError::DecompressedTooLarge);
            }
            let consumed = usize::try_from(stream.total_in() - start)
                .map_err(|_| CryptoError::Decompression)?;
            let finished = matches!(status, Status::StreamEnd);
            if (consumed == input.len() && out.len() < out.capacity()) || finished {
                if consumed != input.len() {
                    // Bytes after the end of the zlib stream.
                    return Err(CryptoError::Decompression);
                }
                return Ok(out);
            }
            if (stream.total_in(), out.len()) == before && out.len() < out.capacity() {
                // No progress with room to spare: truncated or corrupt input.
                return Err(CryptoError::Decompression);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refuses_lzw_as_unsupported() {
        assert_eq!(
            CompressionAlgorithm::from_name("lzw"),
            Err(crate::UnsupportedAlgorithm::Unknown(
                crate::AlgorithmKind::Compression
            ))
        );
    }

    #[test]
    fn zlib_stream_spans_stanzas_with_sync_flush() {
        let mut tx = Compressor::new(CompressionAlgorithm::Zlib);
        let mut rx = Decompressor::new(CompressionAlgorithm::Zlib);
        let first = b"<body>hello hello hello</body>".repeat(3);
        let second = b"<body>hello again</body>".to_vec();
        let c1 = tx.compress(&first).unwrap();
        let c2 = tx.compress(&second).unwrap();
        // RFC 1950 header on the first stanza only; sync flush ends in 00 00 ff ff.
        assert_eq!(c1[0], 0x78);
        assert!(c1.ends_with(&[0, 0, 0xff, 0xff]));
        assert!(c2.ends_with(&[0, 0, 0xff, 0xff]));
        assert_eq!(rx.decompress(&c1, 1 << 20).unwrap(), first);
        assert_eq!(rx.decompress(&c2, 1 << 20).unwrap(), second);
    }

    #[test]
    fn decompression_is_bounded() {
        let mut tx = Compressor::new(CompressionAlgorithm::Zlib);
        let bomb = tx.compress(&vec![b'a'; 1 << 20]).unwrap();
        assert!(bomb.len() < 4096);
        let mut rx = Decompressor::new(CompressionAlgorithm::Zlib);
        assert_eq!(
            rx.decompress(&bomb, 1000),
            Err(CryptoError::DecompressedTooLarge)
        );
    }

    #[test]
    fn garbage_is_a_decompression_error() {
        let mut rx = Decompressor::new(CompressionAlgorithm::Zlib);
        assert!(rx.decompress(b"not zlib at all", 1 << 20).is_err());
    }

    #[test]
    fn none_is_identity() {
        let mut tx = Compressor::new(CompressionAlgorithm::None);
        let mut rx = Decompressor::new(CompressionAlgorithm::None);
        let c = tx.compress(b"abc").unwrap();
        assert_eq!(c, b"abc");
        assert_eq!(rx.decompress(&c, 3).unwrap(), b"abc");
        assert!(rx.decompress(&c, 2).is_err());
    }

    proptest::proptest! {
        #[test]
        fn zlib_round_trips_any_sequence(msgs in proptest::collection::vec(proptest::collection::vec(proptest::prelude::any::<u8>(), 0..3000), 1..6)) {
            let mut tx = Compressor::new(CompressionAlgorithm::Zlib);
            let mut rx = Decompressor::new(CompressionAlgorithm::Zlib);
            for m in msgs {
                let c = tx.compress(&m).unwrap();
                proptest::prop_assert_eq!(rx.decompress(&c, 1 << 20).unwrap(), m);
            }
        }
    }
}
