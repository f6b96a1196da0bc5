/// When a signing key signs: from `active_from` (or its creation) until `retired_at`. A
/// retired key still verifies what it signed; that is each key set's own business.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct KeyWindow {
    pub created_at: i64,
    /// Later than `created_at` for a staged key: published at once, signing from then.
    pub active_from: Option<i64>,
    /// May lie in the future (a staged rotation retires the current key then).
    pub retired_at: Option<i64>,
}

impl KeyWindow {
    /// When it starts signing.
    pub fn signs_from(&self) -> i64 {
        self.active_from.unwrap_or(self.created_at)
    }

    /// Whether it signs at `now`: active, and not (yet) retired.
    pub fn signs_at(&self, now: i64) -> bool {
        self.signs_from() <= now && self.retired_at.is_none_or(|r| r > now)
    }
}

#[cfg(test)]
mod tests {
    use super::KeyWindow;

    #[test]
    fn a_key_signs_from_its_activation_until_its_retirement() {
        let staged = KeyWindow {
            created_at: 100,
            active_from: Some(200),
            retired_at: Some(300),
        };
        assert!(!staged.signs_at(150), "published, not yet signing");
        assert!(staged.signs_at(200) && staged.signs_at(299));
        assert!(!staged.signs_at(300), "retired");
        let plain = KeyWindow {
            created_at: 100,
            active_from: None,
            retired_at: None,
        };
        assert!(!plain.signs_at(99) && plain.signs_at(100) && plain.signs_at(i64::MAX));
    }
}
