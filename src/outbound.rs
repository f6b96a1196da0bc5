//! The HTTP client for requests this server makes (Back-Channel Logout deliveries, and
//! later upstream identity providers): TLS by rustls on ring with the system's trust store
//! (the platform verifier), bounded timeouts, and no redirects followed — a receiver that
//! redirects is misconfigured, and following it would let it point us anywhere.

use std::{sync::Arc, time::Duration};

use rustls_platform_verifier::BuilderVerifierExt;

/// A client builder with our TLS set-up (rustls on ring, the platform verifier) and nothing
/// else: reqwest is built without a default crypto provider, so every client starts here.
pub fn client_builder() -> Result<reqwest::ClientBuilder, String> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let tls = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| format!("TLS set-up failed: {e}"))?
        .with_platform_verifier()
        .map_err(|e| format!("the system trust store could not be loaded: {e}"))?
        .with_no_client_auth();
    Ok(reqwest::Client::builder().tls_backend_preconfigured(tls))
}

/// Builds a client whose whole request (connect, send, answer) takes at most `timeout`.
pub fn http_client(timeout: Duration) -> Result<reqwest::Client, String> {
    client_builder()?
        .timeout(timeout)
        .connect_timeout(timeout.min(Duration::from_secs(5)))
        .redirect(reqwest::redirect::Policy::none())
        .user_agent(concat!("portcullis/", env!("CARGO_PKG_VERSION")))
        .build()
        .map_err(|e| format!("the HTTP client could not be built: {e}"))
}
