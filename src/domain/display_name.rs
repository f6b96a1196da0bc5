use super::Invalid;

/// A free-form name shown to people: 1–64 characters once trimmed, no control characters.
/// Not unique.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DisplayName(String);

impl DisplayName {
    pub const MAX_CHARS: usize = 64;

    pub fn parse(input: &str) -> Result<Self, Invalid> {
        let trimmed = input.trim();
        if trimmed.is_empty() {
            return Err(invalid("must not be empty"));
        }
        if trimmed.chars().count() > Self::MAX_CHARS {
            return Err(invalid(format!(
                "must be at most {} characters",
                Self::MAX_CHARS
            )));
        }
        if trimmed
            .chars()
            .any(|c| c.is_control() || is_invisible_format(c))
        {
            return Err(invalid("must not contain control or invisible characters"));
        }
        Ok(Self(trimmed.to_string()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    pub fn into_inner(self) -> String {
        self.0
    }
}

/// Bidi overrides and zero-width characters that let a name display as something else.
fn is_invisible_format(c: char) -> bool {
    matches!(c, '\u{200B}'..='\u{200F}' | '\u{202A}'..='\u{202E}' | '\u{2066}'..='\u{2069}' | '\u{FEFF}')
}

fn invalid(message: impl Into<String>) -> Invalid {
    Invalid::new("invalid_display_name", "display_name", message)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn trims_and_accepts_any_script() {
        assert_eq!(
            DisplayName::parse("  Rei Ayanami ").unwrap().as_str(),
            "Rei Ayanami"
        );
        assert!(DisplayName::parse("阿巴阿巴阿巴").is_ok());
    }

    #[test]
    fn rejects_empty_long_and_invisible() {
        assert!(DisplayName::parse("   ").is_err());
        assert!(DisplayName::parse(&"x".repeat(65)).is_err());
        assert!(DisplayName::parse("evil\u{202E}txt").is_err());
        assert!(DisplayName::parse("line\nbreak").is_err());
    }
}
