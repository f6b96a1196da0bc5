//! Server-rendered pages: askama templates under `templates/`, one struct per page. Askama
//! HTML-escapes every value a template prints, so nothing here escapes by hand.

use askama::Template;

/// Renders a page; a template that fails to render (a formatting error, not user input) is
/// logged and replaced by a plain apology.
fn render(page: &impl Template) -> String {
    page.render().unwrap_or_else(|e| {
        tracing::error!(error = %e, "a page template failed to render");
        "<!doctype html><title>Error</title><p>Something went wrong; try again.</p>".into()
    })
}

/// What the login page needs.
#[derive(Template)]
#[template(path = "login.html")]
pub struct LoginPage<'a> {
    /// The pending authorization request; empty when signing in to the account pages.
    pub request_id: &'a str,
    pub csrf: &'a str,
    pub client_name: &'a str,
    pub login: &'a str,
    pub error: Option<&'a str>,
    /// (captcha id, PNG data URL) when the captcha policy covers login.
    pub captcha: Option<(&'a str, &'a str)>,
    /// Dev mode only: the captcha's answer, shown beside it.
    pub dev_answer: Option<&'a str>,
    /// Offer "Sign in with a passkey" (and passkey autofill).
    pub passkeys: bool,
    /// The sign-up page of this flow, unless registration is closed.
    pub register_href: Option<String>,
}

pub fn login(p: &LoginPage) -> String {
    render(p)
}

/// What the second step of a sign-in needs.
#[derive(Template)]
#[template(path = "second_factor.html")]
pub struct SecondFactorPage<'a> {
    pub request_id: &'a str,
    pub csrf: &'a str,
    pub mfa_token: &'a str,
    pub username: &'a str,
    /// A code can be typed (TOTP or recovery code).
    pub codes: bool,
    /// With passkeys: the assertion options (JSON).
    pub webauthn: Option<&'a str>,
    pub error: Option<&'a str>,
}

/// The second step: a code from the authenticator app or a recovery code, or a passkey.
pub fn second_factor(p: &SecondFactorPage) -> String {
    render(p)
}

/// The sign-up page (`/ui/register`).
#[derive(Template)]
#[template(path = "register.html")]
pub struct RegisterPage<'a> {
    pub request_id: &'a str,
    pub csrf: &'a str,
    pub client_name: &'a str,
    /// Registration is closed: the page says so and offers sign-in.
    pub closed: bool,
    /// Email verification is on and no code was mailed yet: ask for the address alone.
    pub ask_email_first: bool,
    /// Email verification is on and the code was mailed: ask for it with the rest.
    pub verify_email: bool,
    pub invite: bool,
    pub email: &'a str,
    pub email_code: &'a str,
    pub username: &'a str,
    pub display_name: &'a str,
    pub registration_key: &'a str,
    pub captcha: Option<(&'a str, &'a str)>,
    pub dev_answer: Option<&'a str>,
    pub dev_code: Option<&'a str>,
    /// The error, shown next to `error_field` (or above the form when that is empty).
    pub error: Option<&'a str>,
    pub error_field: &'a str,
    pub sign_in_href: &'a str,
}

pub fn register(p: &RegisterPage) -> String {
    render(p)
}

/// A sign-in that must enrol TOTP before it completes.
pub struct SignInEnrolmentPage<'a> {
    pub request_id: &'a str,
    pub csrf: &'a str,
    pub mfa_token: &'a str,
    pub secret: &'a str,
    /// The QR code, an SVG document.
    pub qr_svg: &'a str,
    pub error: Option<&'a str>,
}

#[derive(Template)]
#[template(path = "sign_in_enrolment.html")]
struct SignInEnrolmentTemplate<'a> {
    request_id: &'a str,
    csrf: &'a str,
    mfa_token: &'a str,
    secret: &'a str,
    qr_data_url: String,
    error: Option<&'a str>,
}

/// An SVG as a `data:` URL, for an `<img>` (no markup of ours is ever inserted unescaped).
pub fn svg_data_url(svg: &str) -> String {
    use base64::Engine;
    format!(
        "data:image/svg+xml;base64,{}",
        base64::engine::general_purpose::STANDARD.encode(svg)
    )
}

pub fn sign_in_enrolment(p: &SignInEnrolmentPage) -> String {
    render(&SignInEnrolmentTemplate {
        request_id: p.request_id,
        csrf: p.csrf,
        mfa_token: p.mfa_token,
        secret: p.secret,
        qr_data_url: svg_data_url(p.qr_svg),
        error: p.error,
    })
}

#[derive(Template)]
#[template(path = "recovery_codes.html")]
struct RecoveryCodesPage<'a> {
    codes: &'a [String],
    next: &'a str,
}

/// New recovery codes, shown once, and the way on.
pub fn recovery_codes(codes: &[String], next: &str) -> String {
    render(&RecoveryCodesPage { codes, next })
}

#[derive(Template)]
#[template(path = "api_key.html")]
struct ApiKeyPage<'a> {
    key: &'a str,
}

/// A new personal API key, shown once.
pub fn api_key(key: &str) -> String {
    render(&ApiKeyPage { key })
}

/// A page that says one thing, with an optional link onwards.
#[derive(Template)]
#[template(path = "message.html")]
struct MessagePage<'a> {
    title: &'a str,
    text: &'a str,
    link: Option<(&'a str, &'a str)>,
}

fn message(title: &str, text: &str, link: Option<(&str, &str)>) -> String {
    render(&MessagePage { title, text, link })
}

/// After the mailed unlock link: this browser may sign in without the delay.
pub fn unlocked(ok: bool) -> String {
    if ok {
        message(
            "You can sign in now",
            "This browser may sign in to your account without waiting, once, within the hour. Go back to the application and sign in.",
            Some(("/ui/login", "Sign in")),
        )
    } else {
        error("This unlock link has expired or was already used.")
    }
}

/// Human descriptions of the scopes we know.
fn describe(scope: &str) -> String {
    match scope {
        "openid" => "Know who you are (your account id)".into(),
        "profile" => "See your username and display name".into(),
        "email" => "See your email address".into(),
        "offline_access" => "Stay signed in when you are away".into(),
        other => format!("Use the permission “{other}”"),
    }
}

pub struct ConsentPage<'a> {
    pub request_id: &'a str,
    pub csrf: &'a str,
    pub client_name: &'a str,
    pub username: &'a str,
    pub scopes: Vec<&'a str>,
    /// A device (RFC 8628) asks: the user should check it is theirs.
    pub device: bool,
}

#[derive(Template)]
#[template(path = "consent.html")]
struct ConsentTemplate<'a> {
    request_id: &'a str,
    csrf: &'a str,
    client_name: &'a str,
    username: &'a str,
    items: Vec<String>,
    device: bool,
}

pub fn consent(p: &ConsentPage) -> String {
    render(&ConsentTemplate {
        request_id: p.request_id,
        csrf: p.csrf,
        client_name: p.client_name,
        username: p.username,
        items: p.scopes.iter().map(|s| describe(s)).collect(),
        device: p.device,
    })
}

#[derive(Template)]
#[template(path = "reset_request.html")]
struct ResetRequestPage<'a> {
    csrf: &'a str,
    email: &'a str,
    error: Option<&'a str>,
}

/// Step one of a forgotten password: the address to mail a code to.
pub fn reset_request(csrf: &str, email: &str, error: Option<&str>) -> String {
    render(&ResetRequestPage { csrf, email, error })
}

/// Step two: the mailed code and the new password.
#[derive(Template)]
#[template(path = "reset_confirm.html")]
pub struct ResetConfirmPage<'a> {
    pub csrf: &'a str,
    pub email: &'a str,
    pub error: Option<&'a str>,
    /// Development mode: the mailed code, shown.
    pub dev_code: Option<&'a str>,
    /// The code as typed, kept when only the new password was refused.
    pub code: &'a str,
}

pub fn reset_confirm(p: &ResetConfirmPage) -> String {
    render(p)
}

/// The password was changed.
pub fn reset_done() -> String {
    message(
        "Password changed",
        "Every session was signed out. Sign in again with your new password.",
        Some(("/ui/login", "Sign in")),
    )
}

#[derive(Template)]
#[template(path = "error.html")]
struct ErrorPage<'a> {
    message: &'a str,
}

/// An error shown on our own page (never a redirect to an untrusted URI).
pub fn error(message: &str) -> String {
    render(&ErrorPage { message })
}

#[derive(Template)]
#[template(path = "logout_confirm.html")]
struct LogoutConfirmPage<'a> {
    username: &'a str,
    csrf: &'a str,
    carried: &'a [(&'a str, &'a str)],
}

/// RP-Initiated Logout without a valid `id_token_hint`: the user confirms, so that no other
/// page can sign them out with a link (OIDC RP-Initiated Logout 1.0 §2, §6).
pub fn logout_confirm(username: &str, csrf: &str, carried: &[(&str, &str)]) -> String {
    render(&LogoutConfirmPage {
        username,
        csrf,
        carried,
    })
}

#[derive(Template)]
#[template(path = "device_entry.html")]
struct DeviceEntryPage<'a> {
    csrf: &'a str,
    user_code: &'a str,
    error: Option<&'a str>,
}

/// RFC 8628 §3.3: the page where the user types the code their device shows.
pub fn device_entry(csrf: &str, user_code: &str, error: Option<&str>) -> String {
    render(&DeviceEntryPage {
        csrf,
        user_code,
        error,
    })
}

/// Where the device flow ends in the browser.
pub fn device_done(outcome: &str) -> String {
    let (title, text) = match outcome {
        "approved" => (
            "Device connected",
            "Your device is signed in. You can close this window and return to it.",
        ),
        "denied" => (
            "Device not connected",
            "You refused the request; the device was not signed in.",
        ),
        _ => (
            "Code expired",
            "This code expired or was already used. Start again on your device.",
        ),
    };
    message(title, text, None)
}

pub fn account_deleted() -> String {
    message(
        "Your account was deleted",
        "Everything of your account is gone, and this browser is signed out.",
        None,
    )
}

pub fn signed_out() -> String {
    message(
        "You are signed out",
        "You can close this window.",
        Some(("/ui/login", "Sign in again")),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    const EVIL: &str = "\"><script>alert(1)</script>";

    #[test]
    fn client_supplied_strings_are_escaped() {
        let html = consent(&ConsentPage {
            request_id: "r\"><script>",
            csrf: "c",
            client_name: "<img src=x onerror=alert(1)>",
            username: "bob",
            scopes: vec!["openid", "<b>"],
            device: true,
        });
        assert!(!html.contains("<img src=x"));
        assert!(!html.contains("<script>"));
        assert!(html.contains("&#60;img src=x onerror=alert(1)&#62;") || html.contains("&lt;img"));
    }

    /// Every page, with markup in every field a user or client controls: none of it
    /// reaches the HTML as markup.
    #[test]
    fn every_page_escapes_every_field() {
        let pages = [
            login(&LoginPage {
                request_id: EVIL,
                csrf: EVIL,
                client_name: EVIL,
                login: EVIL,
                error: Some(EVIL),
                captcha: Some((EVIL, EVIL)),
                dev_answer: Some(EVIL),
                passkeys: true,
                register_href: Some(EVIL.into()),
            }),
            register(&RegisterPage {
                request_id: EVIL,
                csrf: EVIL,
                client_name: EVIL,
                closed: false,
                ask_email_first: false,
                verify_email: true,
                invite: true,
                email: EVIL,
                email_code: EVIL,
                username: EVIL,
                display_name: EVIL,
                registration_key: EVIL,
                captcha: Some((EVIL, EVIL)),
                dev_answer: Some(EVIL),
                dev_code: Some(EVIL),
                error: Some(EVIL),
                error_field: "username",
                sign_in_href: EVIL,
            }),
            second_factor(&SecondFactorPage {
                request_id: EVIL,
                csrf: EVIL,
                mfa_token: EVIL,
                username: EVIL,
                codes: true,
                webauthn: Some(EVIL),
                error: Some(EVIL),
            }),
            consent(&ConsentPage {
                request_id: EVIL,
                csrf: EVIL,
                client_name: EVIL,
                username: EVIL,
                scopes: vec![EVIL],
                device: true,
            }),
            reset_request(EVIL, EVIL, Some(EVIL)),
            reset_confirm(&ResetConfirmPage {
                csrf: EVIL,
                email: EVIL,
                error: Some(EVIL),
                dev_code: Some(EVIL),
                code: EVIL,
            }),
            error(EVIL),
            logout_confirm(EVIL, EVIL, &[(EVIL, EVIL)]),
            device_entry(EVIL, EVIL, Some(EVIL)),
            device_done(EVIL),
            sign_in_enrolment(&SignInEnrolmentPage {
                request_id: EVIL,
                csrf: EVIL,
                mfa_token: EVIL,
                secret: EVIL,
                qr_svg: EVIL,
                error: Some(EVIL),
            }),
            recovery_codes(&[EVIL.to_string()], EVIL),
            api_key(EVIL),
        ];
        for html in pages {
            assert!(!html.contains("<script>alert"), "{html}");
            assert!(!html.contains(EVIL), "printed unescaped: {html}");
            assert!(html.contains("name=\"viewport\""));
        }
    }
}
