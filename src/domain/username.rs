use std::fmt;

use unicode_normalization::UnicodeNormalization;
use unicode_security::{RestrictionLevel, RestrictionLevelDetection};

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

    /// [`Username::parse`] plus the rule for names being registered: UTS #39 §5.2 refuses
    /// letters from scripts people mix by accident or to deceive (Latin with Cyrillic,
    /// `\u{430}lice`); one script, or Latin with Han, Kana or Hangul as Chinese, Japanese and
    /// Korean names are written, is accepted ("Highly Restrictive"). Digits and `_ . -` belong
    /// to every script. Lookups use `parse`, so accounts named before this rule still sign in.
    pub fn parse_new(input: &str) -> Result<Self, Invalid> {
        let name = Self::parse(input)?;
        let letters: String = name.0.chars().filter(|c| c.is_alphabetic()).collect();
        if letters.as_str().detect_restriction_level() > RestrictionLevel::HighlyRestrictive {
            return Err(invalid(
                "may not mix letters of different scripts (such as Latin and Cyrillic), which can look like another name",
            ));
        }
        Ok(name)
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The case-folded form that uniqueness and lookups use.
    pub fn key(&self) -> String {
        self.0.to_lowercase().nfkc().collect()
    }

    /// The confusable skeleton (UTS #39 §4), case-folded: names that look alike (`paypal`,
    /// `paypaI` with a capital i, `pаypаl` with Cyrillic `а`, `rn` and `m`) share it, and no
    /// two accounts may.
    pub fn skeleton(&self) -> String {
        skeleton_of(&self.0)
    }
}

/// The case-folded UTS #39 skeleton of a username as registered (also for names stored
/// before skeletons were indexed, by the migration that indexes them). The skeleton comes
/// first, so a capital `I` folds to `l` before lower-casing could make it an `i`.
pub fn skeleton_of(name: &str) -> String {
    let nfkc: String = name.nfkc().collect();
    let skeleton: String = unicode_security::skeleton(&nfkc).collect();
    // Lower-casing can yield new confusables (`İ`); fold once more.
    let lower = skeleton.to_lowercase();
    unicode_security::skeleton(&lower)
        .collect::<String>()
        .to_lowercase()
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
    fn mixed_scripts_are_refused_and_look_alikes_share_a_skeleton() {
        for ok in [
            "alice",
            "小明",
            "小明abc",
            "ωμέγα",
            "Ünïcödé",
            "владимир",
            "たなか_taro",
            "김민준kim",
        ] {
            assert!(Username::parse_new(ok).is_ok(), "{ok} should be valid");
        }
        for bad in ["\u{430}lice", "p\u{430}yp\u{430}l", "ωmega", "admin\u{3bf}"] {
            assert!(Username::parse(bad).is_ok(), "{bad}: still found at login");
            let err = Username::parse_new(bad).unwrap_err();
            assert!(
                err.to_string().contains("different scripts"),
                "{bad}: {err}"
            );
        }
        let skel = |s: &str| Username::parse(s).unwrap().skeleton();
        assert_eq!(skel("paypal"), skel("PAYPAL"));
        assert_eq!(skel("paypal"), skel("paypaI"), "capital i looks like l");
        assert_eq!(skel("rnicrosoft"), skel("microsoft"));
        assert_eq!(
            skel("alice"),
            skeleton_of("\u{430}lice"),
            "the Cyrillic twin of a stored name"
        );
        assert_ne!(skel("alice"), skel("alicia"));
    }

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
