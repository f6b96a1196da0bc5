//! Emailed one-time codes for registration and password reset.
//!
//! The answer to a code request never depends on whether the address has an account: the
//! same 202, the same 60 s resend cooldown, and mail either way (a code, or for registration
//! of a known address a "you already have an account" notice). Codes are stored as HMACs
//! under a server secret, so a copy of the database does not reveal them.

use rand::Rng;

use super::{Result, ServiceError};
use crate::{
    domain::Email,
    mail::Mailer,
    store::{
        Store,
        codes::{CodeCheck, CodeSpend},
        records::EmailCodeRecord,
        users::UserLookup,
    },
};

/// Seconds a code stays valid.
pub const CODE_TTL: i64 = 600;
/// Seconds before another code may be requested for the same address and purpose.
pub const RESEND_COOLDOWN: i64 = 60;
/// Wrong guesses that invalidate a code.
pub const MAX_ATTEMPTS: u32 = 5;
/// Reset codes use letters and digits that cannot be confused (no 0/O, 1/I/L).
const RESET_ALPHABET: &[u8] = b"ABCDEFGHJKMNPQRSTUVWXYZ23456789";

/// What a code is for; a code for one purpose never works for the other.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CodePurpose {
    Register,
    ResetPassword,
    /// A signed-in user's new address, proven before it replaces the old.
    ChangeEmail,
}

impl CodePurpose {
    fn as_str(self) -> &'static str {
        match self {
            Self::Register => "register",
            Self::ResetPassword => "reset_password",
            Self::ChangeEmail => "change_email",
        }
    }
}

#[derive(Clone)]
pub struct EmailCodes {
    store: Store,
    mailer: Mailer,
    key: [u8; 32],
}

impl EmailCodes {
    pub fn new(store: Store, mailer: Mailer, key: [u8; 32]) -> Self {
        Self { store, mailer, key }
    }

    /// Issues a code for `email` and mails it (or the matching notice) in the background.
    /// Returns the code itself, which only dev mode may show.
    pub async fn request(
        &self,
        email: &str,
        purpose: CodePurpose,
        lang: Option<crate::i18n::Lang>,
    ) -> Result<Option<String>> {
        let email = Email::parse(email)?;
        if self.mailer.delivery_failing() {
            return Err(ServiceError::MailUnavailable);
        }
        let lookup = UserLookup::EmailKey(email.key());
        let known = self
            .store
            .run(move |s| s.find_user(&lookup))
            .await?
            .is_some();
        let code = match (purpose, known) {
            (CodePurpose::Register | CodePurpose::ChangeEmail, false) => Some(digits(6)),
            (CodePurpose::ResetPassword, true) => Some(reset_code()),
            _ => None,
        };
        let now = self.store.clock().now();
        let record = EmailCodeRecord {
            code_mac: code
                .as_ref()
                .map(|c| crate::store::codes::hex(&self.mac(purpose, &email, c))),
            created_at: now,
            expires_at: now + CODE_TTL,
            attempts: 0,
        };
        let key = storage_key(purpose, &email);
        self.store
            .run(move |s| s.put_email_code(&key, record, RESEND_COOLDOWN))
            .await?
            .map_err(|retry_after| ServiceError::ResendTooSoon { retry_after })?;
        let minutes = CODE_TTL / 60;
        let letters = self.mailer.letters(lang);
        let to = email.as_str();
        let mail = match (purpose, &code) {
            (CodePurpose::Register, Some(c)) => Some(letters.registration_code(to, c, minutes)),
            (CodePurpose::Register, None) => Some(letters.already_registered(to)),
            (CodePurpose::ResetPassword, Some(c)) => Some(letters.reset_code(to, c, minutes)),
            (CodePurpose::ResetPassword, None) => None,
            (CodePurpose::ChangeEmail, Some(c)) => Some(letters.change_email_code(to, c, minutes)),
            // The address has an account already: its owner hears of it, the requester
            // sees the same answer as for a free address.
            (CodePurpose::ChangeEmail, None) => Some(letters.address_in_use(to)),
        };
        if let Some(mail) = mail {
            self.mailer.send_in_background(mail);
        }
        Ok(code)
    }

    /// Spends a code. Wrong, used, other-purpose and other-address codes are all the same
    /// `InvalidCode`; an expired one is `CodeExpired`.
    /// Checks a code and spends it (single use).
    pub async fn consume(&self, email: &Email, purpose: CodePurpose, code: &str) -> Result<()> {
        self.check_code(email, purpose, code, true)
            .await
            .map(|_| ())
    }

    /// Checks a code without spending it; a wrong guess still counts. The returned proof is
    /// spent by the store operation that acts on the code, in its own transaction, so a
    /// refused action (a taken name, a weak password) leaves the code usable.
    pub async fn check(
        &self,
        email: &Email,
        purpose: CodePurpose,
        code: &str,
    ) -> Result<CodeSpend> {
        self.check_code(email, purpose, code, false).await
    }

    async fn check_code(
        &self,
        email: &Email,
        purpose: CodePurpose,
        code: &str,
        consume: bool,
    ) -> Result<CodeSpend> {
        let spend = CodeSpend {
            key: storage_key(purpose, email),
            mac: self.mac(purpose, email, &normalise(purpose, code)),
        };
        let (key, mac) = (spend.key.clone(), spend.mac);
        match self
            .store
            .run(move |s| s.check_email_code(&key, &mac, MAX_ATTEMPTS, consume))
            .await?
        {
            CodeCheck::Accepted => Ok(spend),
            CodeCheck::Rejected => Err(ServiceError::InvalidCode),
            CodeCheck::Expired => Err(ServiceError::CodeExpired),
        }
    }

    fn mac(&self, purpose: CodePurpose, email: &Email, code: &str) -> [u8; 32] {
        crate::token::opaque::keyed_digest(&self.key, &[purpose.as_str(), &email.key(), code])
    }

    pub fn mailer(&self) -> &Mailer {
        &self.mailer
    }
}

/// Key of the code record: purpose and lower-cased address.
pub fn storage_key(purpose: CodePurpose, email: &Email) -> String {
    format!("{}:{}", purpose.as_str(), email.key())
}

/// Users type codes with spaces, dashes or in lower case; none of that makes a code wrong.
fn normalise(purpose: CodePurpose, code: &str) -> String {
    let kept = code.chars().filter(|c| !c.is_whitespace() && *c != '-');
    match purpose {
        CodePurpose::Register | CodePurpose::ChangeEmail => kept.collect(),
        CodePurpose::ResetPassword => kept.flat_map(char::to_uppercase).collect(),
    }
}

fn digits(n: usize) -> String {
    let mut rng = rand::rng();
    (0..n)
        .map(|_| char::from(b'0' + rng.random_range(0..10u8)))
        .collect()
}

fn reset_code() -> String {
    let mut rng = rand::rng();
    (0..8)
        .map(|_| char::from(RESET_ALPHABET[rng.random_range(0..RESET_ALPHABET.len())]))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_have_the_documented_shape() {
        let d = digits(6);
        assert!(d.len() == 6 && d.chars().all(|c| c.is_ascii_digit()));
        let r = reset_code();
        assert!(r.len() == 8 && r.bytes().all(|b| RESET_ALPHABET.contains(&b)));
        assert!(!r.contains(['0', 'O', '1', 'I', 'L']));
    }

    #[test]
    fn typing_variations_are_forgiven() {
        assert_eq!(
            normalise(CodePurpose::ResetPassword, "abcd-ef 23"),
            "ABCDEF23"
        );
        assert_eq!(normalise(CodePurpose::Register, " 123 456 "), "123456");
    }
}
