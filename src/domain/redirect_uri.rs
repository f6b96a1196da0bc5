use std::fmt;

use super::Invalid;

/// A client's registered redirect URI (RFC 6749 §3.1.2, RFC 9700 §2.1): absolute, no
/// fragment, no wildcard, no userinfo, and `https` unless the host is a loopback address
/// (RFC 8252 §7.3). Matching at the authorization endpoint is by exact string comparison.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct RedirectUri(String);

impl RedirectUri {
    pub const MAX_LEN: usize = 2000;

    pub fn parse(input: &str) -> Result<Self, Invalid> {
        if input.len() > Self::MAX_LEN {
            return Err(invalid(format!("must be at most {} bytes", Self::MAX_LEN)));
        }
        if input.contains('*') {
            return Err(invalid("must not contain wildcards"));
        }
        if input.chars().any(|c| c.is_whitespace() || c.is_control()) {
            return Err(invalid("must not contain whitespace or control characters"));
        }
        let url = url::Url::parse(input)
            .map_err(|e| invalid(format!("must be an absolute URL ({e})")))?;
        match url.scheme() {
            "https" => {}
            "http" if is_loopback(&url) => {}
            "http" => {
                return Err(invalid(
                    "must use https (plain http is allowed only for loopback hosts)",
                ));
            }
            other => return Err(invalid(format!("must use https, not `{other}:`"))),
        }
        if url.fragment().is_some() || input.contains('#') {
            return Err(invalid("must not have a fragment"));
        }
        if !url.username().is_empty() || url.password().is_some() {
            return Err(invalid("must not contain user information"));
        }
        if url.host_str().is_none_or(str::is_empty) {
            return Err(invalid("must have a host"));
        }
        Ok(Self(input.to_string()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// Whether the URL's host is this machine: a loopback address or `localhost`.
pub(crate) fn is_loopback(url: &url::Url) -> bool {
    match url.host() {
        Some(url::Host::Ipv4(ip)) => ip.is_loopback(),
        Some(url::Host::Ipv6(ip)) => ip.is_loopback(),
        Some(url::Host::Domain(d)) => d.eq_ignore_ascii_case("localhost"),
        None => false,
    }
}

fn invalid(message: impl Into<String>) -> Invalid {
    Invalid::new("invalid_redirect_uri", "redirect_uris", message)
}

impl fmt::Display for RedirectUri {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_https_and_loopback_http() {
        for ok in [
            "https://app.example.com/callback",
            "https://app.example.com:8443/cb?tenant=1",
            "http://127.0.0.1:9999/callback",
            "http://[::1]:8080/cb",
            "http://localhost:3000/auth",
        ] {
            assert_eq!(RedirectUri::parse(ok).unwrap().as_str(), ok);
        }
    }

    #[test]
    fn rejects_the_dangerous_shapes() {
        for bad in [
            "/relative/path",
            "https://app.example.com/cb#frag",
            "https://*.example.com/cb",
            "https://user:pw@app.example.com/cb",
            "http://app.example.com/cb",
            "javascript:alert(1)",
            "data:text/html,<script>alert(1)</script>",
            "ftp://example.com/cb",
            "https://app.example.com/c b",
        ] {
            assert_eq!(
                RedirectUri::parse(bad).unwrap_err().code,
                "invalid_redirect_uri",
                "{bad}"
            );
        }
    }
}
