//! Validated value types. Each `parse` is the only way to build one, so code that holds a
//! `Username` or an `Email` never re-checks it ("parse, don't validate").

mod display_name;
mod email;
mod key_window;
mod password;
mod redirect_uri;
pub(crate) use redirect_uri::is_loopback;
mod role;
mod scope;
pub mod username;

pub use display_name::DisplayName;
pub use email::Email;
pub use key_window::KeyWindow;
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

/// Properties of every parser over arbitrary input: no panic, and what one accepts is stable
/// (parsing its own output gives the same value).
#[cfg(test)]
mod properties {
    use proptest::prelude::*;

    use super::*;

    /// Mostly short strings from a mix of ASCII, Latin-1, Cyrillic, CJK and invisibles, which
    /// reach the parsers' interesting branches more often than uniform Unicode.
    fn text() -> impl Strategy<Value = String> {
        let ch = prop_oneof![
            proptest::char::range('a', 'z'),
            proptest::char::range(' ', '~'),
            proptest::char::range('\u{a0}', '\u{ff}'),
            proptest::char::range('\u{400}', '\u{44f}'),
            proptest::char::range('\u{4e00}', '\u{4e20}'),
            Just('\u{200b}'),
            Just('\u{0}'),
            any::<char>(),
        ];
        proptest::collection::vec(ch, 0..80).prop_map(|v| v.into_iter().collect())
    }

    proptest! {
        #[test]
        fn usernames_are_stable_bounded_and_case_insensitive(s in text()) {
            if let Ok(name) = Username::parse(&s) {
                prop_assert!(name.as_str().chars().count() <= Username::MAX_CHARS);
                prop_assert!(!name.as_str().chars().any(char::is_whitespace));
                let again = Username::parse(name.as_str()).expect("its own output parses");
                prop_assert_eq!(again.key(), name.key());
                // The key is a fixed point: looking a name up by its key finds the same key.
                let by_key = Username::parse(&name.key());
                if let Ok(k) = by_key {
                    prop_assert_eq!(k.key(), name.key());
                }
            }
            // What registers also looks up (the stricter rule never admits what `parse` refuses).
            if Username::parse_new(&s).is_ok() {
                prop_assert!(Username::parse(&s).is_ok());
            }
        }

        #[test]
        fn emails_are_stable_and_keyed_in_lower_case(s in text()) {
            if let Ok(email) = Email::parse(&s) {
                prop_assert!(email.as_str().len() <= Email::MAX_LEN);
                prop_assert_eq!(email.key(), email.key().to_lowercase());
                let again = Email::parse(email.as_str()).expect("its own output parses");
                prop_assert_eq!(again.key(), email.key());
            }
        }

        #[test]
        fn passwords_and_display_names_never_panic(s in text()) {
            let _ = Password::parse(&s);
            if let Ok(d) = DisplayName::parse(&s) {
                prop_assert!(d.as_str().chars().count() <= DisplayName::MAX_CHARS);
            }
        }

        #[test]
        fn redirect_uris_are_absolute_https_or_loopback_and_fragment_free(s in text()) {
            if let Ok(uri) = RedirectUri::parse(&s) {
                let url = url::Url::parse(uri.as_str()).expect("absolute");
                prop_assert!(url.fragment().is_none());
                prop_assert!(url.scheme() == "https" || url.scheme() == "http");
            }
        }

        #[test]
        fn redirect_uris_from_url_shaped_input(host in "[a-z]{1,10}", path in "[a-z/]{0,12}", https in any::<bool>()) {
            let scheme = if https { "https" } else { "http" };
            let s = format!("{scheme}://{host}.example/{path}");
            prop_assert_eq!(RedirectUri::parse(&s).is_ok(), https, "{}", s);
        }

        #[test]
        fn scopes_round_trip_through_their_text(s in text()) {
            if let Ok(scope) = Scope::parse(&s) {
                let again = Scope::parse(&scope.to_string()).expect("its own text parses");
                prop_assert_eq!(again.to_string(), scope.to_string());
                prop_assert!(again.is_subset(&scope) && scope.is_subset(&again));
            }
        }

        #[test]
        fn login_names_never_panic_and_limit_by_account(s in text()) {
            let name = LoginName::parse(&s);
            let upper = LoginName::parse(&s.to_uppercase());
            if let (LoginName::Username(a), LoginName::Username(b)) = (&name, &upper) {
                prop_assert_eq!(a.key() == b.key(), name.limiter_key() == upper.limiter_key());
            }
        }
    }
}
