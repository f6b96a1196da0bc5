//! What every page needs besides its own data: the reader's language, the catalogues, the
//! brand, and where the language switch comes back to. Every page template has a `ui`
//! field; `base.html` uses it for `<html lang>`, the title, the logo, the support contact
//! and the switch, and each page for its sentences (`{{ ui.t("login-title") }}`).

use std::{fmt::Display, sync::Arc};

use poem::{
    Request, Response,
    http::{Method, StatusCode},
};

use crate::{
    http::LANG_COOKIE,
    i18n::{Arg, Lang, Msg, Texts},
    service::Services,
};

/// The reader's language and the brand, for one request's page.
pub struct Ui {
    lang: Lang,
    /// The visitor picked the language with the switch (it then beats `ui_locales`).
    picked: bool,
    accept_language: Option<String>,
    texts: Arc<Texts>,
    /// Where the language switch returns to: this page for a GET, else `/`.
    back: String,
}

impl Ui {
    /// The language of a request: the visitor's pick, else `Accept-Language`, else the
    /// server's default (see [`Ui::for_authorization`] for the relying party's wish).
    pub fn new(services: &Services, req: &Request) -> Ui {
        let picked = super::cookie(req, LANG_COOKIE);
        let accept_language = req.header("accept-language").map(str::to_string);
        let texts = services.texts.clone();
        let lang = Lang::negotiate(
            picked.as_deref(),
            None,
            accept_language.as_deref(),
            texts.default_lang,
        );
        let back = if req.method() == Method::GET {
            // The URI before nesting took off `/ui`.
            req.original_uri()
                .path_and_query()
                .map_or_else(|| "/".to_string(), |pq| pq.as_str().to_string())
        } else {
            "/".to_string()
        };
        Ui {
            lang,
            picked: picked.as_deref().and_then(Lang::from_tag).is_some(),
            accept_language,
            texts,
            back,
        }
    }

    /// The same, for a page of an authorization request: its `ui_locales` (OIDC Core
    /// §3.1.2.1) come before `Accept-Language`, unless the visitor picked a language.
    pub fn for_authorization(mut self, ui_locales: Option<&str>, login_page: String) -> Ui {
        if !self.picked {
            self.lang = Lang::negotiate(
                None,
                ui_locales,
                self.accept_language.as_deref(),
                self.texts.default_lang,
            );
        }
        // A form answer cannot be fetched again; the switch restarts at the login page.
        if self.back == "/" {
            self.back = login_page;
        }
        self
    }

    /// A page in `lang` with the built-in texts (unit tests of the templates).
    #[cfg(test)]
    pub fn for_tests(lang: Lang) -> Ui {
        Ui {
            lang,
            picked: false,
            accept_language: None,
            texts: Texts::built_in(),
            back: "/".into(),
        }
    }

    pub fn lang(&self) -> Lang {
        self.lang
    }

    /// A sentence without placeholders.
    pub fn t(&self, key: &str) -> String {
        self.texts.text(self.lang, key, &[])
    }

    /// A sentence with one placeholder.
    pub fn t1(&self, key: &str, name: &str, value: impl Display) -> String {
        self.texts
            .text(self.lang, key, &[(name, Arg::Text(value.to_string()))])
    }

    /// A sentence with a count (which chooses the plural form).
    pub fn tn(&self, key: &str, name: &str, count: impl std::borrow::Borrow<usize>) -> String {
        self.texts
            .text(self.lang, key, &[(name, Arg::from(*count.borrow()))])
    }

    /// A message decided elsewhere.
    pub fn msg(&self, msg: &Msg) -> String {
        self.texts.msg(self.lang, msg)
    }

    /// `<html lang>`.
    pub fn lang_tag(&self) -> &'static str {
        self.lang.tag()
    }

    pub fn brand(&self) -> &str {
        &self.texts.brand.name
    }

    pub fn has_logo(&self) -> bool {
        self.texts.brand.logo.is_some()
    }

    /// The support contact's link and what it shows.
    pub fn support(&self) -> Option<(String, String)> {
        self.texts
            .brand
            .support
            .as_ref()
            .map(|s| (s.href(), s.label().to_string()))
    }

    /// The language switch: (link, name in itself, tag, is it the current one).
    pub fn languages(&self) -> Vec<(String, &'static str, &'static str, bool)> {
        Lang::ALL
            .iter()
            .map(|&l| {
                let href = format!(
                    "/ui/lang?to={}&back={}",
                    l.tag(),
                    url::form_urlencoded::byte_serialize(self.back.as_bytes()).collect::<String>()
                );
                (href, l.native_name(), l.tag(), l == self.lang)
            })
            .collect()
    }
}

/// How long the language pick is kept (a year).
const PICK_KEPT_FOR: i64 = 365 * 24 * 3600;

/// `GET /ui/lang?to=<tag>&back=<path>`: keeps the visitor's pick in a cookie and returns to
/// `back` — only ever a path on this server, so the switch is no open redirect.
pub(super) fn switch_language(services: &Services, req: &Request) -> Response {
    let q = super::query(req);
    let Some(lang) = q.get("to").and_then(|t| Lang::from_tag(t)) else {
        return super::error_page(StatusCode::BAD_REQUEST, "error-unknown-language");
    };
    let back = q
        .get("back")
        .map(String::as_str)
        .filter(|b| is_local_path(b))
        .unwrap_or("/");
    let mut resp = super::see_other(back);
    super::set_cookie(&mut resp, services, LANG_COOKIE, lang.tag(), PICK_KEPT_FOR);
    resp
}

/// A path on this server: starts with one `/` (not `//host` or `/\host`, which browsers
/// read as another host) and has no control characters.
fn is_local_path(path: &str) -> bool {
    path.starts_with('/')
        && !path.starts_with("//")
        && !path.starts_with("/\\")
        && !path.chars().any(|c| c.is_control())
}

#[cfg(test)]
mod tests {
    use super::is_local_path;

    #[test]
    fn the_switch_only_returns_to_local_paths() {
        assert!(is_local_path("/ui/login?request=abc"));
        assert!(is_local_path("/"));
        for bad in [
            "//evil.test/",
            "/\\evil.test",
            "https://evil.test/",
            "evil",
            "/a\nb",
            "",
        ] {
            assert!(!is_local_path(bad), "{bad:?}");
        }
    }
}
