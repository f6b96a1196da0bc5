//! The HTTP client for requests this server makes (Back-Channel Logout deliveries, and
//! later upstream identity providers): TLS by rustls on ring with the system's trust store
//! (the platform verifier), bounded timeouts, and no redirects followed — a receiver that
//! redirects is misconfigured, and following it would let it point us anywhere.

use std::{sync::Arc, time::Duration};

use rustls_platform_verifier::BuilderVerifierExt;

/// Our TLS client set-up: rustls on ring, certificates checked against the system's trust
/// store (the platform verifier). For HTTP and for PostgreSQL alike.
pub fn tls_config() -> Result<rustls::ClientConfig, String> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    Ok(rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| format!("TLS set-up failed: {e}"))?
        .with_platform_verifier()
        .map_err(|e| format!("the system trust store could not be loaded: {e}"))?
        .with_no_client_auth())
}

/// A client builder with our TLS set-up ([`tls_config`]) and nothing else: reqwest is built
/// without a default crypto provider, so every client starts here.
pub fn client_builder() -> Result<reqwest::ClientBuilder, String> {
    Ok(reqwest::Client::builder().tls_backend_preconfigured(tls_config()?))
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

/// Whether an address is on the public internet: not loopback, private (RFC 1918, RFC 4193),
/// shared (RFC 6598), link-local, unspecified, multicast, broadcast or for documentation.
pub fn is_public(ip: std::net::IpAddr) -> bool {
    use std::net::IpAddr;
    match ip {
        IpAddr::V4(v4) => {
            let [a, b, ..] = v4.octets();
            !(v4.is_loopback()
                || v4.is_private()
                || v4.is_link_local()
                || v4.is_unspecified()
                || v4.is_broadcast()
                || v4.is_multicast()
                || v4.is_documentation()
                || a == 0
                || (a == 100 && (64..128).contains(&b)))
        }
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => is_public(IpAddr::V4(v4)),
            None => {
                let first = v6.segments()[0];
                !(v6.is_loopback()
                    || v6.is_unspecified()
                    || v6.is_multicast()
                    || (first & 0xfe00) == 0xfc00
                    || (first & 0xffc0) == 0xfe80)
            }
        },
    }
}

/// Resolves names to public addresses only (and loopback when allowed), so a URL someone
/// else chose cannot make this server call into its own network: the connection goes only to
/// the addresses checked here (no second lookup to race).
struct PublicOnly {
    allow_loopback: bool,
}

impl reqwest::dns::Resolve for PublicOnly {
    fn resolve(&self, name: reqwest::dns::Name) -> reqwest::dns::Resolving {
        let host = name.as_str().to_string();
        let allow_loopback = self.allow_loopback;
        Box::pin(async move {
            let addrs: Vec<std::net::SocketAddr> = tokio::net::lookup_host((host.as_str(), 0))
                .await?
                .filter(|a| is_public(a.ip()) || (allow_loopback && a.ip().is_loopback()))
                .collect();
            if addrs.is_empty() {
                return Err(format!("{host} has no public address").into());
            }
            Ok(Box::new(addrs.into_iter()) as reqwest::dns::Addrs)
        })
    }
}

/// A client for URLs that others name (a picture in an upstream's claims): only public
/// addresses (loopback too with `allow_loopback`), bounded time, no redirects. An address
/// written in the URL itself must be checked with [`url_allowed`] first, since it is not
/// resolved.
pub fn public_http_client(
    timeout: Duration,
    allow_loopback: bool,
) -> Result<reqwest::Client, String> {
    client_builder()?
        .timeout(timeout)
        .connect_timeout(timeout.min(Duration::from_secs(5)))
        .redirect(reqwest::redirect::Policy::none())
        .dns_resolver(Arc::new(PublicOnly { allow_loopback }))
        .user_agent(concat!("portcullis/", env!("CARGO_PKG_VERSION")))
        .build()
        .map_err(|e| format!("the HTTP client could not be built: {e}"))
}

/// Whether [`public_http_client`] may fetch `url`: https (http only with `allow_loopback`,
/// for a provider on this machine), and an address in the URL must be public (or loopback
/// when allowed).
pub fn url_allowed(url: &url::Url, allow_loopback: bool) -> bool {
    let scheme_ok = url.scheme() == "https" || (allow_loopback && url.scheme() == "http");
    let host_ok = match url.host() {
        Some(url::Host::Ipv4(ip)) => is_public(ip.into()) || (allow_loopback && ip.is_loopback()),
        Some(url::Host::Ipv6(ip)) => is_public(ip.into()) || (allow_loopback && ip.is_loopback()),
        Some(url::Host::Domain(_)) => true,
        None => false,
    };
    scheme_ok && host_ok
}

#[cfg(test)]
mod public_tests {
    use super::*;

    #[test]
    fn only_public_addresses_are_public() {
        for private in [
            "127.0.0.1",
            "10.1.2.3",
            "172.16.0.1",
            "192.168.1.1",
            "169.254.169.254",
            "100.64.0.1",
            "0.0.0.0",
            "::1",
            "fc00::1",
            "fe80::1",
            "::ffff:10.0.0.1",
            "192.0.2.1",
            "224.0.0.1",
        ] {
            assert!(!is_public(private.parse().unwrap()), "{private}");
        }
        for public in ["93.184.216.34", "2606:4700::1111", "8.8.8.8"] {
            assert!(is_public(public.parse().unwrap()), "{public}");
        }
    }

    #[test]
    fn urls_naming_inner_addresses_are_refused() {
        let ok = |u: &str, local| url_allowed(&url::Url::parse(u).unwrap(), local);
        assert!(ok("https://avatars.example.test/a.png", false));
        assert!(!ok("http://avatars.example.test/a.png", false));
        assert!(!ok("https://169.254.169.254/latest/meta-data", false));
        assert!(!ok("https://[::1]/a.png", false));
        assert!(ok("http://127.0.0.1:9/a.png", true));
        assert!(!ok("http://10.0.0.1/a.png", true));
    }
}
