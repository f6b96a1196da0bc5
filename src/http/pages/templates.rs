//! Server-rendered pages: one layout and a function per page. Every value that reaches the
//! HTML passes through [`escape`]; no JavaScript.

pub use crate::html::escape;

const STYLE: &str = "body{font-family:system-ui,sans-serif;background:#f4f5f7;margin:0;padding:1rem}\
main{max-width:24rem;margin:3rem auto;background:#fff;border-radius:.5rem;padding:1.5rem;box-shadow:0 1px 4px #0002}\
h1{font-size:1.3rem;margin-top:0}label{display:block;margin:.8rem 0 .3rem}\
input[type=text],input[type=password]{width:100%;box-sizing:border-box;padding:.6rem;font-size:1rem}\
button{padding:.6rem 1.2rem;font-size:1rem;margin-top:1rem;margin-right:.5rem;cursor:pointer}\
.error{background:#fde8e8;color:#8a1c1c;padding:.6rem;border-radius:.3rem}ul{padding-left:1.2rem}";

fn layout(title: &str, body: &str) -> String {
    format!(
        "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\">\
         <meta name=\"viewport\" content=\"width=device-width,initial-scale=1\">\
         <title>{}</title><style>{STYLE}</style></head><body><main>{body}</main></body></html>",
        escape(title)
    )
}

/// What the login page needs.
pub struct LoginPage<'a> {
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
}

pub fn login(p: &LoginPage) -> String {
    let error = alert(p.error);
    let captcha = p
        .captcha
        .map(|(id, image)| {
            format!(
                "<label for=\"captcha_answer\">Type the characters</label><img alt=\"captcha\" src=\"{}\">\
                 <input type=\"hidden\" name=\"captcha_id\" value=\"{}\">\
                 <input type=\"text\" id=\"captcha_answer\" name=\"captcha_answer\" autocomplete=\"off\" required>",
                escape(image),
                escape(id)
            )
        })
        .unwrap_or_default();
    let captcha = match p.dev_answer {
        Some(answer) => format!(
            "{captcha}<p>Development mode: the answer is <code id=\"dev-captcha-answer\">{}</code></p>",
            escape(answer)
        ),
        None => captcha,
    };
    layout(
        "Sign in",
        &format!(
            "<h1>Sign in to continue to {client}</h1>{error}\
             <form method=\"post\" action=\"/ui/login\">\
             <input type=\"hidden\" name=\"request\" value=\"{request}\">\
             <input type=\"hidden\" name=\"csrf\" value=\"{csrf}\">\
             <label for=\"login\">Username or email</label>\
             <input type=\"text\" id=\"login\" name=\"login\" value=\"{login}\" autocomplete=\"username webauthn\" required autofocus>\
             <label for=\"password\">Password</label>\
             <input type=\"password\" id=\"password\" name=\"password\" autocomplete=\"current-password\" required>\
             {captcha}<button type=\"submit\">Sign in</button></form>{passkey}\
             <p><a href=\"/ui/reset-password\">Forgot your password?</a></p>",
            passkey = if p.passkeys {
                format!(
                    "<form method=\"post\" action=\"/ui/login/passkey\" id=\"passkey-form\" data-begin=\"/ui/login/passkey/begin\">\
                     <input type=\"hidden\" name=\"request\" value=\"{request}\">\
                     <input type=\"hidden\" name=\"csrf\" value=\"{csrf}\">\
                     <input type=\"hidden\" name=\"ceremony_token\"><input type=\"hidden\" name=\"credential\">\
                     <p class=\"error passkey-error\" role=\"alert\" hidden></p>\
                     <button type=\"button\" id=\"passkey-signin\" hidden>Sign in with a passkey</button></form>\
                     <script src=\"/ui/webauthn.js\"></script>",
                    request = escape(p.request_id),
                    csrf = escape(p.csrf),
                )
            } else {
                String::new()
            },
            client = escape(p.client_name),
            request = escape(p.request_id),
            csrf = escape(p.csrf),
            login = escape(p.login),
        ),
    )
}

/// What the second step of a sign-in needs.
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
    let code = if p.codes {
        "<label for=\"code\">Code from your authenticator app, or a recovery code</label>\
         <input type=\"text\" id=\"code\" name=\"code\" inputmode=\"text\" autocomplete=\"one-time-code\" autofocus>\
         <button type=\"submit\">Verify</button>"
    } else {
        ""
    };
    let passkey = p
        .webauthn
        .map(|options| {
            format!(
                "<input type=\"hidden\" name=\"webauthn\">\
                 <p class=\"error passkey-error\" role=\"alert\" hidden></p>\
                 <button type=\"button\" id=\"passkey-answer\" data-options=\"{}\" hidden>Use a passkey</button>",
                escape(options)
            )
        })
        .unwrap_or_default();
    layout(
        "Second step",
        &format!(
            "<h1>Confirm it is you, {user}</h1>{error}\
             <form method=\"post\" action=\"/ui/login/mfa\">\
             <input type=\"hidden\" name=\"request\" value=\"{request}\">\
             <input type=\"hidden\" name=\"csrf\" value=\"{csrf}\">\
             <input type=\"hidden\" name=\"mfa_token\" value=\"{token}\">\
             {code}{passkey}</form><script src=\"/ui/webauthn.js\"></script>\
             <p>Lost your second factor? Use a recovery code, or ask an administrator to reset it.</p>",
            user = escape(p.username),
            error = alert(p.error),
            request = escape(p.request_id),
            csrf = escape(p.csrf),
            token = escape(p.mfa_token),
        ),
    )
}

/// After the mailed unlock link: this browser may sign in without the delay.
pub fn unlocked(ok: bool) -> String {
    if ok {
        layout(
            "Unlocked",
            "<h1>You can sign in now</h1><p>This browser may sign in to your account without waiting, once, within the hour. Go back to the application and sign in.</p>",
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

pub fn consent(p: &ConsentPage) -> String {
    let items: String = p
        .scopes
        .iter()
        .map(|s| format!("<li>{}</li>", escape(&describe(s))))
        .collect();
    layout(
        "Allow access?",
        &format!(
            "<h1>{client} wants to access your account</h1>{device}\
             <p>Signed in as <strong>{user}</strong>. {client} will be able to:</p><ul>{items}</ul>\
             <form method=\"post\" action=\"/ui/consent\">\
             <input type=\"hidden\" name=\"request\" value=\"{request}\">\
             <input type=\"hidden\" name=\"csrf\" value=\"{csrf}\">\
             <button type=\"submit\" name=\"decision\" value=\"allow\">Allow</button>\
             <button type=\"submit\" name=\"decision\" value=\"deny\">Deny</button></form>",
            client = escape(p.client_name),
            device = if p.device {
                "<p class=\"error\">A device is asking to sign in as you. Allow only if you \
                 started this on a device of your own and it shows the code you typed.</p>"
            } else {
                ""
            },
            user = escape(p.username),
            request = escape(p.request_id),
            csrf = escape(p.csrf),
        ),
    )
}

fn alert(error: Option<&str>) -> String {
    error
        .map(|e| format!("<p class=\"error\" role=\"alert\">{}</p>", escape(e)))
        .unwrap_or_default()
}

/// Step one of a forgotten password: the address to mail a code to.
pub fn reset_request(csrf: &str, email: &str, error: Option<&str>) -> String {
    layout(
        "Reset your password",
        &format!(
            "<h1>Reset your password</h1>{error}\
             <p>Enter the email address of your account; we will mail you a code.</p>\
             <form method=\"post\" action=\"/ui/reset-password\">\
             <input type=\"hidden\" name=\"step\" value=\"request\">\
             <input type=\"hidden\" name=\"csrf\" value=\"{csrf}\">\
             <label for=\"email\">Email</label>\
             <input type=\"text\" id=\"email\" name=\"email\" value=\"{email}\" autocomplete=\"email\" required autofocus>\
             <button type=\"submit\">Send code</button></form>",
            error = alert(error),
            csrf = escape(csrf),
            email = escape(email),
        ),
    )
}

/// Step two: the mailed code and the new password.
pub fn reset_confirm(
    csrf: &str,
    email: &str,
    error: Option<&str>,
    dev_code: Option<&str>,
) -> String {
    let dev = dev_code
        .map(|c| {
            format!(
                "<p>Development mode: the code is <code id=\"dev-code\">{}</code></p>",
                escape(c)
            )
        })
        .unwrap_or_default();
    layout(
        "Choose a new password",
        &format!(
            "<h1>Choose a new password</h1>{error}\
             <p>If {email} has an account, a code is on its way; it works for 10 minutes.</p>{dev}\
             <form method=\"post\" action=\"/ui/reset-password\">\
             <input type=\"hidden\" name=\"step\" value=\"reset\">\
             <input type=\"hidden\" name=\"csrf\" value=\"{csrf}\">\
             <input type=\"hidden\" name=\"email\" value=\"{email}\">\
             <label for=\"code\">Code</label>\
             <input type=\"text\" id=\"code\" name=\"code\" autocomplete=\"one-time-code\" required autofocus>\
             <label for=\"new_password\">New password</label>\
             <input type=\"password\" id=\"new_password\" name=\"new_password\" autocomplete=\"new-password\" required>\
             <button type=\"submit\">Change password</button></form>",
            error = alert(error),
            csrf = escape(csrf),
            email = escape(email),
        ),
    )
}

/// The password was changed.
pub fn reset_done() -> String {
    layout(
        "Password changed",
        "<h1>Password changed</h1><p>Every session was signed out. Sign in again with your new \
         password from the application.</p>",
    )
}

/// An error shown on our own page (never a redirect to an untrusted URI).
pub fn error(message: &str) -> String {
    layout(
        "Cannot continue",
        &format!(
            "<h1>Cannot continue</h1><p class=\"error\">{}</p><p>Go back to the application and try again.</p>",
            escape(message)
        ),
    )
}

/// Shown after RP-initiated logout without a redirect.
/// RP-Initiated Logout without a valid `id_token_hint`: the user confirms, so that no other
/// page can sign them out with a link (OIDC RP-Initiated Logout 1.0 §2, §6).
pub fn logout_confirm(username: &str, csrf: &str, carried: &[(&str, &str)]) -> String {
    let hidden: String = carried
        .iter()
        .map(|(k, v)| {
            format!(
                "<input type=\"hidden\" name=\"{}\" value=\"{}\">",
                escape(k),
                escape(v)
            )
        })
        .collect();
    layout(
        "Sign out?",
        &format!(
            "<h1>Sign out?</h1><p>You are signed in as <strong>{user}</strong>. \
             Do you want to sign out?</p>\
             <form method=\"post\" action=\"/oauth2/logout\">\
             <input type=\"hidden\" name=\"csrf\" value=\"{csrf}\">{hidden}\
             <button type=\"submit\" name=\"confirm\" value=\"yes\">Sign out</button></form>\
             <p>If you did not ask to sign out, close this page: you stay signed in.</p>",
            user = escape(username),
            csrf = escape(csrf),
        ),
    )
}

/// RFC 8628 §3.3: the page where the user types the code their device shows.
pub fn device_entry(csrf: &str, user_code: &str, error: Option<&str>) -> String {
    layout(
        "Connect a device",
        &format!(
            "<h1>Connect a device</h1>{error}\
             <p>Enter the code shown on your device.</p>\
             <form method=\"post\" action=\"/ui/device\">\
             <input type=\"hidden\" name=\"csrf\" value=\"{csrf}\">\
             <label for=\"user_code\">Code</label>\
             <input type=\"text\" id=\"user_code\" name=\"user_code\" value=\"{code}\" \
             autocomplete=\"one-time-code\" autocapitalize=\"characters\" spellcheck=\"false\" required autofocus>\
             <button type=\"submit\">Continue</button></form>",
            error = alert(error),
            csrf = escape(csrf),
            code = escape(user_code),
        ),
    )
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
    layout(
        title,
        &format!("<h1>{}</h1><p>{}</p>", escape(title), escape(text)),
    )
}

pub fn signed_out() -> String {
    layout(
        "Signed out",
        "<h1>You are signed out</h1><p>You can close this window.</p>",
    )
}

#[cfg(test)]
mod tests {
    use super::*;

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
        assert!(html.contains("&lt;img src=x onerror=alert(1)&gt;"));
    }

    #[test]
    fn the_logout_and_device_pages_escape_what_the_request_carried() {
        const EVIL: &str = "\"><script>alert(1)</script>";
        let logout = logout_confirm(
            EVIL,
            "c",
            &[("post_logout_redirect_uri", EVIL), ("state", EVIL)],
        );
        let entry = device_entry(EVIL, EVIL, Some(EVIL));
        let done = device_done(EVIL);
        for html in [logout, entry, done] {
            assert!(!html.contains("<script>alert"), "{html}");
        }
    }
}
