//! Server-rendered pages: askama templates under `templates/`, one struct per page. Askama
//! HTML-escapes every value a template prints, so nothing here escapes by hand.

use askama::Template;

pub use super::ui::Ui;
use crate::i18n::Msg;

/// Renders a page; a template that fails to render (a formatting error, not user input) is
/// logged and replaced by a plain apology.
pub(super) fn render(page: &impl Template) -> String {
    page.render().unwrap_or_else(|e| {
        tracing::error!(error = %e, "a page template failed to render");
        "<!doctype html><title>Error</title><p>Something went wrong; try again.</p>".into()
    })
}

/// What the login page needs.
#[derive(Template)]
#[template(path = "login.html")]
pub struct LoginPage<'a> {
    pub ui: &'a Ui,
    /// The pending authorization request; empty when signing in to the account pages.
    pub request_id: &'a str,
    pub csrf: &'a str,
    pub client_name: &'a str,
    pub login: &'a str,
    pub error: Option<&'a Msg>,
    /// (captcha id, PNG data URL) when the captcha policy covers login.
    pub captcha: Option<(&'a str, &'a str)>,
    /// Dev mode only: the captcha's answer, shown beside it.
    pub dev_answer: Option<&'a str>,
    /// Offer "Sign in with a passkey" (and passkey autofill).
    pub passkeys: bool,
    /// The sign-up page of this flow, unless registration is closed.
    pub register_href: Option<String>,
    /// (start link, name) of each upstream identity provider.
    pub upstreams: &'a [(String, String)],
}

pub fn login(p: &LoginPage) -> String {
    render(p)
}

/// What the second step of a sign-in needs.
#[derive(Template)]
#[template(path = "second_factor.html")]
pub struct SecondFactorPage<'a> {
    pub ui: &'a Ui,
    pub request_id: &'a str,
    pub csrf: &'a str,
    pub mfa_token: &'a str,
    pub username: &'a str,
    /// A code can be typed (TOTP or recovery code).
    pub codes: bool,
    /// With passkeys: the assertion options (JSON).
    pub webauthn: Option<&'a str>,
    pub error: Option<&'a Msg>,
}

/// The second step: a code from the authenticator app or a recovery code, or a passkey.
pub fn second_factor(p: &SecondFactorPage) -> String {
    render(p)
}

/// The sign-up page (`/ui/register`).
#[derive(Template)]
#[template(path = "register.html")]
pub struct RegisterPage<'a> {
    pub ui: &'a Ui,
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
    pub error: Option<&'a Msg>,
    pub error_field: &'a str,
    pub sign_in_href: &'a str,
}

pub fn register(p: &RegisterPage) -> String {
    render(p)
}

/// A sign-in that must enrol TOTP before it completes.
pub struct SignInEnrolmentPage<'a> {
    pub ui: &'a Ui,
    pub request_id: &'a str,
    pub csrf: &'a str,
    pub mfa_token: &'a str,
    pub secret: &'a str,
    /// The QR code, an SVG document.
    pub qr_svg: &'a str,
    pub error: Option<&'a Msg>,
}

#[derive(Template)]
#[template(path = "sign_in_enrolment.html")]
struct SignInEnrolmentTemplate<'a> {
    ui: &'a Ui,
    request_id: &'a str,
    csrf: &'a str,
    mfa_token: &'a str,
    secret: &'a str,
    qr_data_url: String,
    error: Option<&'a Msg>,
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
        ui: p.ui,
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
    ui: &'a Ui,
    codes: &'a [String],
    next: &'a str,
}

/// New recovery codes, shown once, and the way on.
pub fn recovery_codes(ui: &Ui, codes: &[String], next: &str) -> String {
    render(&RecoveryCodesPage { ui, codes, next })
}

#[derive(Template)]
#[template(path = "api_key.html")]
struct ApiKeyPage<'a> {
    ui: &'a Ui,
    key: &'a str,
}

/// A new personal API key, shown once.
pub fn api_key(ui: &Ui, key: &str) -> String {
    render(&ApiKeyPage { ui, key })
}

/// A page that says one thing, with an optional link onwards.
#[derive(Template)]
#[template(path = "message.html")]
struct MessagePage<'a> {
    ui: &'a Ui,
    /// Catalogue keys.
    title: &'a str,
    text: &'a str,
    /// (href, catalogue key of the label).
    link: Option<(&'a str, &'a str)>,
}

/// A page of one title and one sentence (catalogue keys), with an optional link onwards.
fn message(ui: &Ui, title: &str, text: &str, link: Option<(&str, &str)>) -> String {
    render(&MessagePage {
        ui,
        title,
        text,
        link,
    })
}

/// After the mailed unlock link: this browser may sign in without the delay.
pub fn unlocked(ui: &Ui, ok: bool) -> String {
    if ok {
        message(
            ui,
            "unlocked-title",
            "unlocked-text",
            Some(("/ui/login", "login-submit")),
        )
    } else {
        error(ui, &Msg::new("error-unlock-link-dead"))
    }
}

/// Human descriptions of the scopes we know.
fn describe(scope: &str) -> Msg {
    match scope {
        "openid" => Msg::new("scope-openid"),
        "profile" => Msg::new("scope-profile"),
        "email" => Msg::new("scope-email"),
        "offline_access" => Msg::new("scope-offline-access"),
        other => Msg::new("scope-other").with("scope", other),
    }
}

pub struct ConsentPage<'a> {
    pub ui: &'a Ui,
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
    ui: &'a Ui,
    request_id: &'a str,
    csrf: &'a str,
    client_name: &'a str,
    username: &'a str,
    items: Vec<Msg>,
    device: bool,
}

pub fn consent(p: &ConsentPage) -> String {
    render(&ConsentTemplate {
        ui: p.ui,
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
    ui: &'a Ui,
    csrf: &'a str,
    email: &'a str,
    error: Option<&'a Msg>,
}

/// Step one of a forgotten password: the address to mail a code to.
pub fn reset_request(ui: &Ui, csrf: &str, email: &str, error: Option<&Msg>) -> String {
    render(&ResetRequestPage {
        ui,
        csrf,
        email,
        error,
    })
}

/// Step two: the mailed code and the new password.
#[derive(Template)]
#[template(path = "reset_confirm.html")]
pub struct ResetConfirmPage<'a> {
    pub ui: &'a Ui,
    pub csrf: &'a str,
    pub email: &'a str,
    pub error: Option<&'a Msg>,
    /// Development mode: the mailed code, shown.
    pub dev_code: Option<&'a str>,
    /// The code as typed, kept when only the new password was refused.
    pub code: &'a str,
}

pub fn reset_confirm(p: &ResetConfirmPage) -> String {
    render(p)
}

/// The password was changed.
pub fn reset_done(ui: &Ui) -> String {
    message(
        ui,
        "reset-done-title",
        "reset-done-text",
        Some(("/ui/login", "login-submit")),
    )
}

#[derive(Template)]
#[template(path = "error.html")]
struct ErrorPage<'a> {
    ui: &'a Ui,
    message: &'a Msg,
}

/// An error shown on our own page (never a redirect to an untrusted URI).
pub fn error(ui: &Ui, message: &Msg) -> String {
    render(&ErrorPage { ui, message })
}

#[derive(Template)]
#[template(path = "logout_confirm.html")]
struct LogoutConfirmPage<'a> {
    ui: &'a Ui,
    username: &'a str,
    csrf: &'a str,
    carried: &'a [(&'a str, &'a str)],
}

/// RP-Initiated Logout without a valid `id_token_hint`: the user confirms, so that no other
/// page can sign them out with a link (OIDC RP-Initiated Logout 1.0 §2, §6).
pub fn logout_confirm(ui: &Ui, username: &str, csrf: &str, carried: &[(&str, &str)]) -> String {
    render(&LogoutConfirmPage {
        ui,
        username,
        csrf,
        carried,
    })
}

#[derive(Template)]
#[template(path = "device_entry.html")]
struct DeviceEntryPage<'a> {
    ui: &'a Ui,
    csrf: &'a str,
    user_code: &'a str,
    error: Option<&'a Msg>,
}

/// RFC 8628 §3.3: the page where the user types the code their device shows.
pub fn device_entry(ui: &Ui, csrf: &str, user_code: &str, error: Option<&Msg>) -> String {
    render(&DeviceEntryPage {
        ui,
        csrf,
        user_code,
        error,
    })
}

/// Where the device flow ends in the browser.
pub fn device_done(ui: &Ui, outcome: &str) -> String {
    let (title, text) = match outcome {
        "approved" => ("device-approved-title", "device-approved-text"),
        "denied" => ("device-denied-title", "device-denied-text"),
        _ => ("device-expired-title", "device-expired-text"),
    };
    message(ui, title, text, None)
}

pub fn account_deleted(ui: &Ui) -> String {
    message(ui, "account-deleted-title", "account-deleted-text", None)
}

pub fn signed_out(ui: &Ui) -> String {
    message(
        ui,
        "signed-out-title",
        "signed-out-text",
        Some(("/ui/login", "sign-in-again")),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::i18n::Lang;

    const EVIL: &str = "\"><script>alert(1)</script>";

    #[test]
    fn client_supplied_strings_are_escaped() {
        let ui = Ui::for_tests(Lang::En);
        let html = consent(&ConsentPage {
            ui: &ui,
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

    /// Every page, in every language, with markup in every field a user or client controls:
    /// none of it reaches the HTML as markup, and each page says which language it is in.
    #[test]
    fn every_page_escapes_every_field() {
        for lang in Lang::ALL {
            let ui = &Ui::for_tests(lang);
            let evil = Msg::new("plain").with("text", EVIL);
            let evil = Some(&evil);
            let pages = [
                login(&LoginPage {
                    ui,
                    request_id: EVIL,
                    csrf: EVIL,
                    client_name: EVIL,
                    login: EVIL,
                    error: evil,
                    captcha: Some((EVIL, EVIL)),
                    dev_answer: Some(EVIL),
                    passkeys: true,
                    register_href: Some(EVIL.into()),
                    upstreams: &[(EVIL.into(), EVIL.into())],
                }),
                register(&RegisterPage {
                    ui,
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
                    error: evil,
                    error_field: "username",
                    sign_in_href: EVIL,
                }),
                second_factor(&SecondFactorPage {
                    ui,
                    request_id: EVIL,
                    csrf: EVIL,
                    mfa_token: EVIL,
                    username: EVIL,
                    codes: true,
                    webauthn: Some(EVIL),
                    error: evil,
                }),
                consent(&ConsentPage {
                    ui,
                    request_id: EVIL,
                    csrf: EVIL,
                    client_name: EVIL,
                    username: EVIL,
                    scopes: vec![EVIL],
                    device: true,
                }),
                reset_request(ui, EVIL, EVIL, evil),
                reset_confirm(&ResetConfirmPage {
                    ui,
                    csrf: EVIL,
                    email: EVIL,
                    error: evil,
                    dev_code: Some(EVIL),
                    code: EVIL,
                }),
                error(ui, &Msg::new("plain").with("text", EVIL)),
                logout_confirm(ui, EVIL, EVIL, &[(EVIL, EVIL)]),
                device_entry(ui, EVIL, EVIL, evil),
                device_done(ui, EVIL),
                sign_in_enrolment(&SignInEnrolmentPage {
                    ui,
                    request_id: EVIL,
                    csrf: EVIL,
                    mfa_token: EVIL,
                    secret: EVIL,
                    qr_svg: EVIL,
                    error: evil,
                }),
                recovery_codes(ui, &[EVIL.to_string()], EVIL),
                api_key(ui, EVIL),
            ];
            for html in pages {
                assert!(!html.contains("<script>alert"), "{html}");
                assert!(!html.contains(EVIL), "printed unescaped: {html}");
                assert!(html.contains("name=\"viewport\""));
                assert!(
                    html.contains(&format!("<html lang=\"{}\">", lang.tag())),
                    "{html}"
                );
            }
        }
    }

    #[test]
    fn pages_are_written_in_the_readers_language() {
        let page = |lang| {
            login(&LoginPage {
                ui: &Ui::for_tests(lang),
                request_id: "",
                csrf: "c",
                client_name: "",
                login: "",
                error: Some(&Msg::new("error-credentials")),
                captcha: None,
                dev_answer: None,
                passkeys: false,
                register_href: None,
                upstreams: &[],
            })
        };
        let en = page(Lang::En);
        assert!(en.contains("Sign in to your account") && en.contains("is incorrect"));
        let zh = page(Lang::ZhCn);
        assert!(
            zh.contains("登录你的账号") && zh.contains("用户名、邮箱或密码不正确"),
            "{zh}"
        );
        assert!(!zh.contains("Sign in to your account"));
        // The switch offers the other language and marks the current one.
        assert!(zh.contains("aria-current=\"true\">简体中文") && zh.contains(">English</a>"));
    }
}
