//! The process-wide rustls crypto provider.
//!
//! Some dependencies (object_store's `aws` feature) compile in aws-lc-rs,
//! others may compile in ring; with both present rustls cannot pick one and
//! panics at the first TLS setup. Every `main` and test harness therefore
//! installs aws-lc-rs explicitly before anything else touches TLS.

/// Installs `rustls::crypto::aws_lc_rs` as the process default provider.
///
/// Idempotent: if a provider is already installed (by an earlier call, or by
/// another test in the same binary) it is left in place.
pub fn install_crypto_provider() {
    // `Err` only means a default already exists, which is the goal.
    let _already_installed = rustls::crypto::aws_lc_rs::default_provider().install_default();
}
