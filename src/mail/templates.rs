//! The messages portcullis sends. Each has a plain-text body and an HTML alternative,
//! rendered by the askama template `templates/mail/message.html`, which escapes every value.

use askama::Template;

use super::OutgoingMail;

/// One paragraph of a message's HTML part.
enum Part {
    Text(String),
    /// A code to type, shown large.
    Code(String),
    Link(String),
}

#[derive(Template)]
#[template(path = "mail/message.html")]
struct MessageHtml<'a> {
    parts: &'a [Part],
}

fn html(parts: &[Part]) -> String {
    MessageHtml { parts }.render().unwrap_or_else(|e| {
        // Formatting into a String does not fail; the text part still carries the message.
        tracing::error!(error = %e, "a mail template failed to render");
        String::new()
    })
}

fn text(s: impl Into<String>) -> Part {
    Part::Text(s.into())
}

/// A registration code.
pub fn registration_code(to: &str, code: &str, minutes: i64) -> OutgoingMail {
    OutgoingMail {
        to: to.into(),
        subject: "Your verification code".into(),
        text: format!(
            "Your verification code is {code}\n\nIt expires in {minutes} minutes and works once.\nIf you did not ask to register, ignore this message.\n"
        ),
        html: html(&[
            text("Your verification code is"),
            Part::Code(code.into()),
            text(format!(
                "It expires in {minutes} minutes and works once. If you did not ask to register, ignore this message."
            )),
        ]),
    }
}

/// Sent instead of a code when someone tries to register an address that has an account, so
/// the API's answer stays the same for known and unknown addresses.
pub fn already_registered(to: &str) -> OutgoingMail {
    let body = "Someone, maybe you, tried to create an account with this address, but it already has one.\nSign in, or reset your password if you forgot it. If it was not you, ignore this message.\n";
    OutgoingMail {
        to: to.into(),
        subject: "You already have an account".into(),
        text: body.into(),
        html: html(&[text(body)]),
    }
}

/// A password reset code.
pub fn reset_code(to: &str, code: &str, minutes: i64) -> OutgoingMail {
    OutgoingMail {
        to: to.into(),
        subject: "Your password reset code".into(),
        text: format!(
            "Your password reset code is {code}\n\nIt expires in {minutes} minutes and works once.\nIf you did not ask to reset your password, ignore this message; your password is unchanged.\n"
        ),
        html: html(&[
            text("Your password reset code is"),
            Part::Code(code.into()),
            text(format!(
                "It expires in {minutes} minutes and works once. If you did not ask to reset your password, ignore this message; your password is unchanged."
            )),
        ]),
    }
}

/// A code proving a new address before it replaces the account's old one.
pub fn change_email_code(to: &str, code: &str, minutes: i64) -> OutgoingMail {
    OutgoingMail {
        to: to.into(),
        subject: "Confirm your new email address".into(),
        text: format!(
            "Your code to confirm this address is {code}\n\nIt expires in {minutes} minutes and works once.\nIf you did not ask to change your account's address, ignore this message.\n"
        ),
        html: html(&[
            text("Your code to confirm this address is"),
            Part::Code(code.into()),
            text(format!(
                "It expires in {minutes} minutes and works once. If you did not ask to change your account's address, ignore this message."
            )),
        ]),
    }
}

/// Sent instead of a code when someone asks to move their account to an address that has
/// an account of its own.
pub fn address_in_use(to: &str) -> OutgoingMail {
    let body = "Someone asked to use this address for their account, but it already belongs to an account here, so nothing changed.\nIf it was you, sign in to that account instead.\n";
    OutgoingMail {
        to: to.into(),
        subject: "Your address is already in use".into(),
        text: body.into(),
        html: html(&[text(body)]),
    }
}

/// Tells the old address that the account moved to a new one.
pub fn email_changed(to: &str, username: &str, new_email: &str) -> OutgoingMail {
    let body = format!(
        "The email address of the account {username} was changed to {new_email}. Mail about the account now goes there.\nIf you did not do this, reset your password now and contact your administrator.\n"
    );
    OutgoingMail {
        to: to.into(),
        subject: "Your email address was changed".into(),
        html: html(&[text(body.clone())]),
        text: body,
    }
}

/// Tells the owner their password was changed.
pub fn password_changed(to: &str, username: &str) -> OutgoingMail {
    let body = format!(
        "The password of the account {username} was just changed, and your other sessions were signed out.\nIf you did not do this, reset your password now and contact your administrator.\n"
    );
    OutgoingMail {
        to: to.into(),
        subject: "Your password was changed".into(),
        html: html(&[text(body.clone())]),
        text: body,
    }
}

/// Tells the owner that sign-ins to their account are being slowed down after failed
/// passwords, with a single-use link that lets them past the delay.
pub fn unlock(to: &str, username: &str, link: &str, minutes: i64) -> OutgoingMail {
    let intro = format!(
        "Someone tried to sign in as {username} with a wrong password several times, so password sign-ins to this account are being slowed down."
    );
    let act = format!(
        "If it was you, open this link to sign in without waiting (it works once, for {minutes} minutes):"
    );
    let after = "If it was not you, your account is safe as long as your password is strong; consider changing it, or adding a passkey or an authenticator app.";
    OutgoingMail {
        to: to.into(),
        subject: "Someone tried to sign in as you".into(),
        text: format!("{intro}\n{act}\n{link}\n{after}\n"),
        html: html(&[
            text(intro.clone()),
            text(act.clone()),
            Part::Link(link.into()),
            text(after),
        ]),
    }
}

/// `portcullis send-test-email`.
pub fn test_message(to: &str) -> OutgoingMail {
    let body = "This is a test message from portcullis. Mail delivery works.\n";
    OutgoingMail {
        to: to.into(),
        subject: "portcullis test message".into(),
        text: body.into(),
        html: html(&[text(body)]),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn html_is_escaped() {
        let m = password_changed("a@example.test", "<script>x</script>");
        assert!(m.html.contains("&#60;script&#62;") || m.html.contains("&lt;script&gt;"));
        assert!(!m.html.contains("<script>"));
        assert!(m.text.contains("<script>x</script>"));
    }

    #[test]
    fn code_mails_carry_code_and_lifetime_in_both_parts() {
        let m = reset_code("a@example.test", "ABCD2345", 10);
        assert!(m.text.contains("ABCD2345") && m.html.contains("ABCD2345"));
        assert!(m.text.contains("10 minutes") && m.html.contains("10 minutes"));
    }
}
