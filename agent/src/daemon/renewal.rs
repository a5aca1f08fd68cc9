//! Renews the node certificate before it expires: at two thirds of its validity (at
//! once when less than a third remains, e.g. after the agent was stopped a while), a
//! new key and CSR go to `RenewCertificate` over the current mutual-TLS identity; the
//! answer is stored (see [`Identity::store`]) and the link switches to it. The old
//! certificate stays valid until it expires, so calls in flight are unaffected.

use std::time::Duration;

use gantry_proto::v1::RenewCertificateRequest;
use tokio_util::sync::CancellationToken;

use super::config::AgentConfig;
use super::identity::{Identity, now_ms};
use super::link::{Link, LinkTls};

/// A failed renewal is retried this often (bounded by a thirtieth of the lifetime, so
/// short test lifetimes still get several attempts).
const RETRY_AT_MOST: Duration = Duration::from_secs(60);

/// When a certificate valid from `not_before_ms` to `not_after_ms` should be renewed:
/// when a third of its validity remains.
pub fn renew_at_ms(not_before_ms: u64, not_after_ms: u64) -> u64 {
    not_after_ms.saturating_sub(not_after_ms.saturating_sub(not_before_ms) / 3)
}

/// Runs until `cancel`, renewing `identity` whenever it is due.
pub async fn run(config: AgentConfig, identity: Identity, link: Link, cancel: CancellationToken) {
    loop {
        let Some(cert) = identity.certificate() else {
            tracing::error!(cert = %identity.cert.display(), "cannot read the node certificate; not renewing it");
            return;
        };
        let wait = Duration::from_millis(renew_at_ms(cert.not_before_ms, cert.not_after_ms).saturating_sub(now_ms()));
        tracing::debug!(in_secs = wait.as_secs(), "node certificate renewal scheduled");
        tokio::select! {
            _ = cancel.cancelled() => return,
            _ = tokio::time::sleep(wait) => {}
        }
        match renew(&config, &identity, &link, cert.not_after_ms).await {
            Ok(not_after_ms) => tracing::info!(node = %config.node_name, not_after_ms, "node certificate renewed"),
            Err(e) => {
                let lifetime = Duration::from_millis(cert.not_after_ms.saturating_sub(cert.not_before_ms));
                let retry = (lifetime / 30).clamp(Duration::from_secs(1), RETRY_AT_MOST);
                tracing::warn!(
                    error = format!("{e:#}"),
                    retry_secs = retry.as_secs(),
                    "renewing the node certificate failed"
                );
                tokio::select! {
                    _ = cancel.cancelled() => return,
                    _ = tokio::time::sleep(retry) => {}
                }
            }
        }
    }
}

/// One renewal; returns the new certificate's expiry.
async fn renew(
    config: &AgentConfig,
    identity: &Identity,
    link: &Link,
    current_not_after_ms: u64,
) -> anyhow::Result<u64> {
    let (key_pem, csr_pem) = gantry_pki::node_csr(&config.node_name)?;
    let req = RenewCertificateRequest { csr_pem };
    let resp = link
        .any(|mut c| {
            let req = req.clone();
            async move { c.renew_certificate(req).await }
        })
        .await?
        .into_inner();
    let cert = gantry_pki::NodeCertificate::from_pem(&resp.cert_pem)
        .ok_or_else(|| anyhow::anyhow!("the scheduler answered with no node certificate"))?;
    anyhow::ensure!(cert.node_id == config.node_name, "the renewed certificate is for node '{}'", cert.node_id);
    // An answer that would not move the expiry (a replica with a clock far behind) is
    // kept out: renewing again at once would loop.
    anyhow::ensure!(
        cert.not_after_ms > current_not_after_ms,
        "the renewed certificate expires no later than the current one"
    );
    identity.store(&key_pem, &resp.cert_pem)?;
    let ca_cert = config.tls.ca_cert.as_deref().ok_or_else(|| anyhow::anyhow!("tls.ca_cert is required"))?;
    let fresh = Link::new(config, LinkTls::Node { ca_cert, cert: &identity.cert, key: &identity.key })?;
    link.replace(&fresh);
    Ok(cert.not_after_ms)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renewal_is_due_when_a_third_remains() {
        let day = 24 * 3600 * 1000;
        assert_eq!(renew_at_ms(0, 3 * day), 2 * day);
        assert_eq!(renew_at_ms(1_000, 1_000 + 300), 1_200);
        // Already past: due now (the caller waits zero).
        assert!(renew_at_ms(0, 3 * day) < 5 * day);
        assert_eq!(renew_at_ms(10, 5), 5, "a malformed validity is due at once, never panics");
    }
}
