use std::fmt;

use unicode_normalization::UnicodeNormalization;

use super::Invalid;

/// A login name: Unicode letters and digits plus `_ . -`, 1–64 characters after NFKC
/// normalisation. Names like `小明` are valid; whitespace, control, zero-width and other
/// invisible characters are not. Uniqueness is case-insensitive, through [`Username::key`].
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Username(String);

impl Username {
    pub const MAX_CHARS: usize = 64;

    pub fn parse(input: &str) -> Result<Self, Invalid> {
        let normalised: String = input.nfkc().collect();
        let count = normalised.chars().count();
        if count == 0 {
            return Err(invalid("must not be empty"));
        }
        if count > Self::MAX_CHARS {
            return Err(invalid(format!(
                "must be at most {} characters (got {count})",
                Self::MAX_CHARS
            )));
        }
        if let Some(bad) = normalised
            .chars()
            .find(|c| !(c.is_alphanumeric() || matches!(c, '_' | '.' | '-')))
        {
            let what = if bad.is_whitespace() {
                "whitespace".to_string()
            } else if bad.is_control() {
                "control characters".to_string()
            } else {
                format!("the character {:?} (U+{:04X})", bad, bad as u32)
            };
            return Err(invalid(format!(
                "may contain only letters, digits, '_', '.' and '-', not {what}"
            )));
        }
        Ok(Self(normalised))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The case-folded form that uniqueness and lookups use.
    pub fn key(&self) -> String {
        self.0.to_lowercase().nfkc().collect()
    }
}

fn invalid(message: impl Into<String>) -> Invalid {
    Invalid::new("invalid_username", "username", message)
}

impl fmt::Display for Username {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_ascii_cjk_and_punctuation() {
        for ok in ["alice", "小明", "a.b-c_d", "Ünïcödé", "x", "user123"] {
            assert!(Username::parse(ok).is_ok(), "{ok} should be valid");
        }
    }

    #[test]
    fn rejects_empty_space_control_and_invisible() {
        for bad in [
            "",
            "a b",
            "tab\there",
            "nl\n",
            "zero\u{200B}width",
            "joiner\u{200D}x",
            "bell\u{7}",
            "at@sign",
            "slash/",
            "emoji😀",
        ] {
            let err = Username::parse(bad).unwrap_err();
            assert_eq!(err.code, "invalid_username", "{bad:?}");
        }
    }

    #[test]
    fn length_counts_characters_after_nfkc() {
        assert!(Username::parse(&"字".repeat(64)).is_ok());
        assert!(Username::parse(&"字".repeat(65)).is_err());
        // U+FB01 (ﬁ ligature) normalises to two letters under NFKC.
        assert_eq!(Username::parse("\u{FB01}").unwrap().as_str(), "fi");
    }

    #[test]
    fn key_is_case_insensitive() {
        assert_eq!(
            Username::parse("Alice").unwrap().key(),
            Username::parse("aLICE").unwrap().key()
        );
        // Full-width letters normalise to ASCII, so they cannot impersonate.
        assert_eq!(
            Username::parse("ａｌｉｃｅ").unwrap().key(),
            Username::parse("alice").unwrap().key()
        );
    }
}
