//! Benchmarks only: see `benches/crypto.rs`. Run `cargo bench -p esession-bench`
//! (add `--features bench-openssl` for the OpenSSL floor in the same run).
