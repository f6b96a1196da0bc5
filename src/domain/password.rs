use std::fmt;

use super::Invalid;

/// A candidate password: 8–256 characters, never truncated. Its `Debug` never shows it.
#[derive(Clone, PartialEq, Eq)]
pub struct Password(String);

/// A password that is long enough but too easy to guess, with the estimator's reason.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("password is too weak: {reason}")]
pub struct WeakPassword {
    pub reason: String,
}

impl Password {
    pub const MIN_CHARS: usize = 8;
    pub const MAX_CHARS: usize = 256;
    /// zxcvbn's cost grows quickly with length; past this many characters a password's
    /// strength is decided by its prefix, which is plenty to catch repetition.
    const ESTIMATE_PREFIX: usize = 64;

    pub fn parse(input: &str) -> Result<Self, Invalid> {
        let count = input.chars().count();
        if count < Self::MIN_CHARS {
            return Err(invalid(format!(
                "must be at least {} characters",
                Self::MIN_CHARS
            )));
        }
        if count > Self::MAX_CHARS {
            return Err(invalid(format!(
                "must be at most {} characters",
                Self::MAX_CHARS
            )));
        }
        Ok(Self(input.to_string()))
    }

    pub fn expose(&self) -> &str {
        &self.0
    }

    /// Rejects guessable passwords (zxcvbn score below 3), also penalising ones built from the
    /// user's own name or address (`user_inputs`).
    pub fn check_strength(&self, user_inputs: &[&str]) -> Result<(), WeakPassword> {
        let prefix: String = self.0.chars().take(Self::ESTIMATE_PREFIX).collect();
        let entropy = zxcvbn::zxcvbn(&prefix, user_inputs);
        if (entropy.score() as u8) >= 3 {
            return Ok(());
        }
        let reason = entropy
            .feedback()
            .and_then(|f| {
                let warning = f.warning().map(|w| w.to_string());
                let hint = f.suggestions().first().map(|s| s.to_string());
                match (warning, hint) {
                    (Some(w), Some(h)) => Some(format!("{w} {h}")),
                    (Some(w), None) => Some(w),
                    (None, Some(h)) => Some(h),
                    (None, None) => None,
                }
            })
            .unwrap_or_else(|| "it would be guessed quickly; add more unusual words".into());
        Err(WeakPassword { reason })
    }
}

fn invalid(message: impl Into<String>) -> Invalid {
    Invalid::new("invalid_password", "password", message)
}

impl fmt::Debug for Password {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Password(<redacted>)")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn length_bounds_count_characters_not_bytes() {
        assert!(Password::parse("short").is_err());
        assert!(Password::parse("密码密码密码密码").is_ok()); // 8 chars, 24 bytes
        assert!(Password::parse(&"x".repeat(256)).is_ok());
        assert!(Password::parse(&"x".repeat(257)).is_err());
    }

    #[test]
    fn never_truncated() {
        let long = format!("{}tail", "a".repeat(200));
        assert_eq!(Password::parse(&long).unwrap().expose(), long);
    }

    #[test]
    fn weak_passwords_are_rejected_with_a_reason() {
        for weak in ["password", "12345678", "qwertyuiop", "aaaaaaaaaaaa"] {
            let err = Password::parse(weak)
                .unwrap()
                .check_strength(&[])
                .unwrap_err();
            assert!(!err.reason.is_empty());
        }
    }

    #[test]
    fn own_name_makes_a_password_weaker() {
        let p = Password::parse("alicealice2024").unwrap();
        assert!(p.check_strength(&["alice"]).is_err());
    }

    #[test]
    fn strong_passwords_pass() {
        let p = Password::parse("Tr0ub4dor&3-lilac-orbit").unwrap();
        assert!(p.check_strength(&["alice", "alice@example.test"]).is_ok());
    }

    #[test]
    fn debug_does_not_leak() {
        let p = Password::parse("super-secret-value").unwrap();
        assert!(!format!("{p:?}").contains("secret"));
    }
}
