//! Validated value types. Each `parse` is the only way to build one, so code that holds a
//! `Username` or an `Email` never re-checks it ("parse, don't validate").

mod display_name;
mod email;
mod password;
mod redirect_uri;
mod role;
mod scope;
pub mod username;

pub use display_name::DisplayName;
pub use email::Email;
pub use password::{Password, WeakPassword};
pub use redirect_uri::RedirectUri;
pub use role::Role;
pub use scope::{OIDC_SCOPES, Scope};
pub use username::Username;

/// Why a value was rejected: a stable machine code and a sentence for people.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{field} {message}")]
pub struct Invalid {
    /// Stable machine code, e.g. `invalid_username`.
    pub code: &'static str,
    /// Which input field the rule applies to.
    pub field: &'static str,
    /// The rule that was broken, in words.
    pub message: String,
}

impl Invalid {
    pub(crate) fn new(code: &'static str, field: &'static str, message: impl Into<String>) -> Self {
        Self {
            code,
            field,
            message: message.into(),
        }
    }
}

/// What a login form's "username or email" field holds, normalised to the key it is looked up by.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LoginName {
    Username(Username),
    Email(Email),
    /// Neither a valid username nor a valid email: it can match no account, but is still
    /// treated like one (same hashing cost, same rate limit) so it reveals nothing.
    Unmatchable(String),
}

impl LoginName {
    /// Classifies a login string: anything with `@` is an email, the rest a username.
    pub fn parse(input: &str) -> Self {
        let trimmed = input.trim();
        if trimmed.contains('@') {
            match Email::parse(trimmed) {
                Ok(email) => Self::Email(email),
                Err(_) => Self::Unmatchable(trimmed.to_lowercase()),
            }
        } else {
            match Username::parse(trimmed) {
                Ok(name) => Self::Username(name),
                Err(_) => Self::Unmatchable(trimmed.to_lowercase()),
            }
        }
    }

    /// The key used for per-account rate limiting when no account matches.
    pub fn limiter_key(&self) -> String {
        match self {
            Self::Username(u) => format!("u:{}", u.key()),
            Self::Email(e) => format!("e:{}", e.key()),
            Self::Unmatchable(s) => format!("x:{s}"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn login_name_classifies_by_at_sign() {
        assert!(matches!(LoginName::parse("alice"), LoginName::Username(_)));
        assert!(matches!(
            LoginName::parse(" Alice@Example.test "),
            LoginName::Email(e) if e.key() == "alice@example.test"
        ));
        assert!(matches!(LoginName::parse("a b"), LoginName::Unmatchable(_)));
        assert!(matches!(LoginName::parse("@@"), LoginName::Unmatchable(_)));
    }

    #[test]
    fn same_account_gives_same_limiter_key_whatever_the_case() {
        assert_eq!(
            LoginName::parse("ALICE").limiter_key(),
            LoginName::parse("alice").limiter_key()
        );
    }
}
