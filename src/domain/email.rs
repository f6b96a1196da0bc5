use std::{fmt, str::FromStr};

use super::Invalid;

/// An email address, syntax-checked (RFC 5321/5322 via `email_address`), at most 254 bytes.
/// Stored as given (trimmed); compared and looked up case-insensitively through [`Email::key`].
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Email(String);

impl Email {
    pub const MAX_LEN: usize = 254;

    pub fn parse(input: &str) -> Result<Self, Invalid> {
        let trimmed = input.trim();
        if trimmed.is_empty() {
            return Err(invalid("must not be empty"));
        }
        if trimmed.len() > Self::MAX_LEN {
            return Err(invalid(format!("must be at most {} bytes", Self::MAX_LEN)));
        }
        let parsed = email_address::EmailAddress::from_str(trimmed)
            .map_err(|e| invalid(format!("is not a valid address: {e}")))?;
        // Display names ("Alice <a@b>") are valid RFC 5322 but not an address to store.
        if parsed.as_str() != trimmed || trimmed.contains(['<', '>', ' ']) {
            return Err(invalid("must be a bare address like name@example.com"));
        }
        if !parsed.domain().contains('.') && !parsed.domain().starts_with('[') {
            return Err(invalid("must have a domain with a dot, like example.com"));
        }
        Ok(Self(trimmed.to_string()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The lower-cased form that uniqueness and lookups use.
    pub fn key(&self) -> String {
        self.0.to_lowercase()
    }
}

fn invalid(message: impl Into<String>) -> Invalid {
    Invalid::new("invalid_email", "email", message)
}

impl fmt::Display for Email {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_ordinary_addresses() {
        for ok in [
            "a@example.com",
            "first.last+tag@sub.example.org",
            "17371438227@122.com",
        ] {
            assert_eq!(Email::parse(ok).unwrap().as_str(), ok);
        }
    }

    #[test]
    fn rejects_garbage() {
        for bad in [
            "",
            "plain",
            "@example.com",
            "a@",
            "a@@b.com",
            "Alice <a@b.com>",
            "a@localhost",
        ] {
            assert_eq!(
                Email::parse(bad).unwrap_err().code,
                "invalid_email",
                "{bad:?}"
            );
        }
        let long = format!("{}@example.com", "a".repeat(250));
        assert!(Email::parse(&long).is_err());
    }

    #[test]
    fn key_ignores_case_and_outer_space() {
        assert_eq!(
            Email::parse(" A@Example.COM ").unwrap().key(),
            "a@example.com"
        );
    }
}
