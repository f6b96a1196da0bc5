//! The messages portcullis sends, in the reader's language and under the operator's brand.
//! Each has a plain-text body and an HTML alternative, rendered by the askama template
//! `templates/mail/message.html`, which escapes every value. The sentences come from the
//! `mail-*` keys of the catalogues (`locales/*.ftl`).

use askama::Template;

use super::OutgoingMail;
use crate::i18n::{Arg, Lang, Support, Texts};

/// One paragraph of a message.
enum Part {
    Text(String),
    /// A code to type, shown large.
    Code(String),
    Link(String),
}

#[derive(Template)]
#[template(path = "mail/message.html")]
struct MessageHtml<'a> {
    lang: &'a str,
    brand: &'a str,
    parts: &'a [Part],
    /// "Questions? Contact …" and the contact's link target.
    support: Option<(String, String)>,
}

/// The messages, written in one language.
pub struct Letters<'a> {
    texts: &'a Texts,
    lang: Lang,
}

impl<'a> Letters<'a> {
    pub fn new(texts: &'a Texts, lang: Lang) -> Self {
        Self { texts, lang }
    }

    fn t(&self, key: &str, args: &[(&str, Arg)]) -> String {
        self.texts.text(self.lang, key, args)
    }

    /// Builds both bodies from the paragraphs, with the brand's signature and support line.
    fn compose(&self, to: &str, subject: String, parts: &[Part]) -> OutgoingMail {
        let brand = &self.texts.brand;
        let support = brand.support.as_ref().map(|s: &Support| {
            let line = self.t("mail-support", &[("contact", s.label().into())]);
            (line, s.href())
        });
        let mut text = String::new();
        for part in parts {
            let (Part::Text(p) | Part::Code(p) | Part::Link(p)) = part;
            text.push_str(p);
            text.push_str("\n\n");
        }
        text.push_str(&format!("-- \n{}\n", brand.name));
        if let Some((line, _)) = &support {
            text.push_str(line);
            text.push('\n');
        }
        let html = MessageHtml {
            lang: self.lang.tag(),
            brand: &brand.name,
            parts,
            support,
        }
        .render()
        .unwrap_or_else(|e| {
            // Formatting into a String does not fail; the text part still carries it.
            tracing::error!(error = %e, "a mail template failed to render");
            String::new()
        });
        OutgoingMail {
            to: to.into(),
            subject,
            text,
            html,
        }
    }

    /// A mail carrying a code: an introduction, the code, and its expiry and disclaimer.
    fn code_mail(&self, to: &str, kind: &str, code: &str, minutes: i64) -> OutgoingMail {
        let minutes = [("minutes", Arg::Number(minutes))];
        self.compose(
            to,
            self.t(&format!("mail-{kind}-subject"), &[]),
            &[
                Part::Text(self.t(&format!("mail-{kind}-intro"), &[])),
                Part::Code(code.into()),
                Part::Text(self.t(&format!("mail-{kind}-expiry"), &minutes)),
            ],
        )
    }

    /// A registration code.
    pub fn registration_code(&self, to: &str, code: &str, minutes: i64) -> OutgoingMail {
        self.code_mail(to, "registration", code, minutes)
    }

    /// Sent instead of a code when someone tries to register an address that has an
    /// account, so the API's answer stays the same for known and unknown addresses.
    pub fn already_registered(&self, to: &str) -> OutgoingMail {
        self.compose(
            to,
            self.t("mail-already-registered-subject", &[]),
            &[Part::Text(self.t("mail-already-registered-body", &[]))],
        )
    }

    /// A password reset code.
    pub fn reset_code(&self, to: &str, code: &str, minutes: i64) -> OutgoingMail {
        self.code_mail(to, "reset", code, minutes)
    }

    /// A code proving a new address before it replaces the account's old one.
    pub fn change_email_code(&self, to: &str, code: &str, minutes: i64) -> OutgoingMail {
        self.code_mail(to, "change-email", code, minutes)
    }

    /// Sent instead of a code when someone asks to move their account to an address that
    /// has an account of its own.
    pub fn address_in_use(&self, to: &str) -> OutgoingMail {
        self.compose(
            to,
            self.t("mail-address-in-use-subject", &[]),
            &[Part::Text(self.t("mail-address-in-use-body", &[]))],
        )
    }

    /// Tells the old address that the account moved to a new one.
    pub fn email_changed(&self, to: &str, username: &str, new_email: &str) -> OutgoingMail {
        let args = [
            ("username", Arg::from(username)),
            ("new_email", Arg::from(new_email)),
        ];
        self.compose(
            to,
            self.t("mail-email-changed-subject", &[]),
            &[
                Part::Text(self.t("mail-email-changed-body", &args)),
                Part::Text(self.t("mail-not-you-reset", &[])),
            ],
        )
    }

    /// Tells the owner their password was changed.
    pub fn password_changed(&self, to: &str, username: &str) -> OutgoingMail {
        self.compose(
            to,
            self.t("mail-password-changed-subject", &[]),
            &[
                Part::Text(self.t(
                    "mail-password-changed-body",
                    &[("username", username.into())],
                )),
                Part::Text(self.t("mail-not-you-reset", &[])),
            ],
        )
    }

    /// Tells the owner that sign-ins to their account are being slowed down after failed
    /// passwords, with a single-use link that lets them past the delay.
    pub fn unlock(&self, to: &str, username: &str, link: &str, minutes: i64) -> OutgoingMail {
        self.compose(
            to,
            self.t("mail-unlock-subject", &[]),
            &[
                Part::Text(self.t("mail-unlock-intro", &[("username", username.into())])),
                Part::Text(self.t("mail-unlock-act", &[("minutes", Arg::Number(minutes))])),
                Part::Link(link.into()),
                Part::Text(self.t("mail-unlock-not-you", &[])),
            ],
        )
    }

    /// `portcullis send-test-email`.
    pub fn test_message(&self, to: &str) -> OutgoingMail {
        let brand = [("brand", Arg::from(self.texts.brand.name.as_str()))];
        self.compose(
            to,
            self.t("mail-test-subject", &brand),
            &[Part::Text(self.t("mail-test-body", &brand))],
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::i18n::{Brand, Support};

    fn texts() -> std::sync::Arc<Texts> {
        Texts::built_in()
    }

    #[test]
    fn html_is_escaped() {
        let texts = texts();
        let m =
            Letters::new(&texts, Lang::En).password_changed("a@example.test", "<script>x</script>");
        assert!(m.html.contains("&#60;script&#62;") || m.html.contains("&lt;script&gt;"));
        assert!(!m.html.contains("<script>"));
        assert!(m.text.contains("<script>x</script>"));
    }

    #[test]
    fn code_mails_carry_code_and_lifetime_in_both_parts() {
        let texts = texts();
        let m = Letters::new(&texts, Lang::En).reset_code("a@example.test", "ABCD2345", 10);
        assert!(m.text.contains("ABCD2345") && m.html.contains("ABCD2345"));
        assert!(m.text.contains("10 minutes") && m.html.contains("10 minutes"));
        let zh = Letters::new(&texts, Lang::ZhCn).reset_code("a@example.test", "ABCD2345", 10);
        assert!(zh.subject.contains("密码"), "{}", zh.subject);
        assert!(
            zh.text.contains("ABCD2345") && zh.text.contains("10 分钟"),
            "{}",
            zh.text
        );
        assert!(zh.html.contains("lang=\"zh-CN\""));
    }

    #[test]
    fn the_brand_signs_every_message() {
        let texts = Texts::new(
            Lang::En,
            Brand {
                name: "Acme <ID>".into(),
                support: Support::parse("help@acme.test").ok(),
                ..Brand::default()
            },
        )
        .expect("catalogues");
        let m = Letters::new(&texts, Lang::En).test_message("a@example.test");
        assert!(m.subject.contains("Acme <ID>"));
        assert!(m.text.contains("Acme <ID>") && m.text.contains("help@acme.test"));
        assert!(m.html.contains("Acme &#60;ID&#62;") || m.html.contains("Acme &lt;ID&gt;"));
        assert!(m.html.contains("mailto:help@acme.test"));
    }
}
