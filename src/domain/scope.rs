use std::{collections::BTreeSet, fmt};

use super::Invalid;

/// A set of scope tokens (RFC 6749 §3.3): space-separated, each of `%x21 / %x23-5B / %x5D-7E`.
/// Kept sorted and de-duplicated so equal sets compare and print equally.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Scope(BTreeSet<String>);

/// Scopes defined by OpenID Connect Core §5.4 and §11 that portcullis understands.
pub const OIDC_SCOPES: [&str; 4] = ["openid", "profile", "email", "offline_access"];

impl Scope {
    pub fn parse(input: &str) -> Result<Self, Invalid> {
        let mut set = BTreeSet::new();
        for token in input.split(' ').filter(|t| !t.is_empty()) {
            if token.len() > 128
                || !token
                    .bytes()
                    .all(|b| b == 0x21 || (0x23..=0x5B).contains(&b) || (0x5D..=0x7E).contains(&b))
            {
                return Err(Invalid::new(
                    "invalid_scope",
                    "scope",
                    format!("`{token}` is not a valid scope token"),
                ));
            }
            set.insert(token.to_string());
        }
        Ok(Self(set))
    }

    pub fn from_tokens<I: IntoIterator<Item = S>, S: AsRef<str>>(
        tokens: I,
    ) -> Result<Self, Invalid> {
        let joined: Vec<String> = tokens.into_iter().map(|t| t.as_ref().to_string()).collect();
        Self::parse(&joined.join(" "))
    }

    pub fn contains(&self, token: &str) -> bool {
        self.0.contains(token)
    }

    pub fn is_subset(&self, other: &Scope) -> bool {
        self.0.is_subset(&other.0)
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    pub fn tokens(&self) -> impl Iterator<Item = &str> {
        self.0.iter().map(String::as_str)
    }
}

impl fmt::Display for Scope {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let v: Vec<&str> = self.tokens().collect();
        f.write_str(&v.join(" "))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_sorts_and_dedups() {
        let s = Scope::parse("profile openid  openid email").unwrap();
        assert_eq!(s.to_string(), "email openid profile");
        assert!(Scope::parse("openid").unwrap().is_subset(&s));
        assert!(!Scope::parse("openid admin").unwrap().is_subset(&s));
    }

    #[test]
    fn rejects_bad_tokens() {
        assert!(Scope::parse("a\"b").is_err());
        assert!(Scope::parse("back\\slash").is_err());
        assert!(Scope::parse("ünïcode").is_err());
    }
}
