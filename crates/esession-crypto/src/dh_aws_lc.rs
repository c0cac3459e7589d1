//! Constant-time modular exponentiation through AWS-LC's
//! `BN_mod_exp_mont_consttime` (feature `aws-lc-modexp`, on by default).
//!
//! Why unsafe code here: crypto-bigint's constant-time `BoxedMontyForm::pow`
//! measured 1.9x the OpenSSL floor at 2048 bits on our CI machines (AMD EPYC;
//! `cargo bench -p esession-bench --features bench-openssl`, docs/PERFORMANCE.md),
//! against a target of 1.6x. AWS-LC is already linked for RSA (aws-lc-rs), so
//! its assembly-optimised constant-time exponentiation costs no new dependency.
//! This module is the crate's only unsafe code: every pointer is created,
//! checked for NULL and freed (with `BN_clear_free`) inside one RAII wrapper.

#![allow(unsafe_code)]

use core::ptr;

use aws_lc_sys as ffi;
use zeroize::Zeroizing;

/// An owned BIGNUM, cleared and freed on drop.
struct BigNum(ptr::NonNull<ffi::BIGNUM>);

impl BigNum {
    fn from_be(bytes: &[u8]) -> Option<Self> {
        // SAFETY: `bytes` is a valid slice for `len` bytes; a NULL `ret` asks
        // BN_bin2bn to allocate; the result is checked for NULL.
        let raw = unsafe { ffi::BN_bin2bn(bytes.as_ptr(), bytes.len(), ptr::null_mut()) };
        ptr::NonNull::new(raw).map(Self)
    }

    fn new() -> Option<Self> {
        // SAFETY: BN_new has no preconditions; the result is checked for NULL.
        ptr::NonNull::new(unsafe { ffi::BN_new() }).map(Self)
    }

    fn as_ptr(&self) -> *const ffi::BIGNUM {
        self.0.as_ptr()
    }

    fn to_be_padded(&self, len: usize) -> Option<Zeroizing<Vec<u8>>> {
        let mut out = Zeroizing::new(vec![0u8; len]);
        // SAFETY: `out` is writable for `len` bytes; `self` is a valid BIGNUM.
        let ok = unsafe { ffi::BN_bn2bin_padded(out.as_mut_ptr(), len, self.as_ptr()) };
        (ok == 1).then_some(out)
    }
}

impl Drop for BigNum {
    fn drop(&mut self) {
        // SAFETY: the pointer came from BN_new/BN_bin2bn and is freed once.
        unsafe { ffi::BN_clear_free(self.0.as_ptr()) }
    }
}

struct Context(ptr::NonNull<ffi::BN_CTX>);

impl Drop for Context {
    fn drop(&mut self) {
        // SAFETY: created by BN_CTX_new, freed once.
        unsafe { ffi::BN_CTX_free(self.0.as_ptr()) }
    }
}

struct Montgomery(ptr::NonNull<ffi::BN_MONT_CTX>);

impl Drop for Montgomery {
    fn drop(&mut self) {
        // SAFETY: created by BN_MONT_CTX_new_consttime, freed once.
        unsafe { ffi::BN_MONT_CTX_free(self.0.as_ptr()) }
    }
}

/// A modulus with its Montgomery context, made once per group (issue 16:
/// making the context cost about 2.5% of each exponentiation).
pub(crate) struct Modulus {
    bn: BigNum,
    mont: Montgomery,
    len: usize,
}

// SAFETY: after `Modulus::new` returns, nothing mutates the modulus or its
// Montgomery context: the only use is `BN_mod_exp_mont_consttime`, which takes
// both as `const` pointers and only reads them (BoringSSL's rule, which AWS-LC
// keeps: `const` objects may be used from several threads at once); the
// context holds its own copy of N and no `BN_CTX` (each call makes its own).
// They are freed once, on drop (never, in practice: they live in statics).
unsafe impl Send for Modulus {}
// SAFETY: as above: shared use is read-only.
unsafe impl Sync for Modulus {}

impl Modulus {
    /// The modulus `bytes` (big-endian, odd) ready for exponentiations;
    /// `None` only if AWS-LC fails (out of memory, or an even or zero modulus).
    pub(crate) fn new(bytes: &[u8]) -> Option<Self> {
        let bn = BigNum::from_be(bytes)?;
        // SAFETY: BN_CTX_new has no preconditions; checked for NULL.
        let ctx = Context(ptr::NonNull::new(unsafe { ffi::BN_CTX_new() })?);
        // SAFETY: valid modulus and context; the result is checked for NULL.
        let mont = Montgomery(ptr::NonNull::new(unsafe {
            ffi::BN_MONT_CTX_new_consttime(bn.as_ptr(), ctx.0.as_ptr())
        })?);
        Some(Self {
            bn,
            mont,
            len: bytes.len(),
        })
    }

    /// base^exponent mod this modulus, constant time in the exponent's value,
    /// as big-endian bytes of the modulus' length. `None` only if AWS-LC fails.
    pub(crate) fn power(&self, base: &[u8], exponent: &[u8]) -> Option<Zeroizing<Vec<u8>>> {
        let base = BigNum::from_be(base)?;
        let exponent = BigNum::from_be(exponent)?;
        let result = BigNum::new()?;
        // SAFETY: BN_CTX_new has no preconditions; checked for NULL.
        let ctx = Context(ptr::NonNull::new(unsafe { ffi::BN_CTX_new() })?);
        // SAFETY: every pointer is a live object owned above or by `self`;
        // `result` is distinct from the inputs; the Montgomery context belongs
        // to `self.bn` and is only read.
        let ok = unsafe {
            ffi::BN_mod_exp_mont_consttime(
                result.0.as_ptr(),
                base.as_ptr(),
                exponent.as_ptr(),
                self.bn.as_ptr(),
                ctx.0.as_ptr(),
                self.mont.0.as_ptr(),
            )
        };
        if ok != 1 {
            return None;
        }
        result.to_be_padded(self.len)
    }
}
