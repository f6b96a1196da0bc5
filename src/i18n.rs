//! What people read, in their language and under the operator's brand: the Fluent
//! catalogues of the pages and mail (`locales/<tag>.ftl`, one per language, compiled in), the
//! choice of language, and the product name, logo, accent colour and support contact.
//!
//! A language is chosen per request (see [`Lang::negotiate`]); the pages and mail then take
//! every sentence from [`Texts::text`], which falls back to English for a key a catalogue
//! lacks (a test keeps that from happening) and never fails.

use std::{path::Path, sync::Arc};

use fluent_bundle::{FluentArgs, FluentResource, FluentValue, concurrent::FluentBundle};
use unic_langid::LanguageIdentifier;

/// A language the pages and mail are written in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, clap::ValueEnum)]
pub enum Lang {
    #[default]
    #[value(name = "en")]
    En,
    /// Simplified Chinese.
    #[value(name = "zh-CN")]
    ZhCn,
}

impl Lang {
    /// Every language, in the order the language switch lists them.
    pub const ALL: [Lang; 2] = [Lang::En, Lang::ZhCn];

    /// The BCP 47 tag (for `<html lang>`, the switch and the catalogue's file name).
    pub fn tag(self) -> &'static str {
        match self {
            Lang::En => "en",
            Lang::ZhCn => "zh-CN",
        }
    }

    /// The language's name in itself, for the switch.
    pub fn native_name(self) -> &'static str {
        match self {
            Lang::En => "English",
            Lang::ZhCn => "简体中文",
        }
    }

    fn catalogue(self) -> &'static str {
        match self {
            Lang::En => include_str!("../locales/en.ftl"),
            Lang::ZhCn => include_str!("../locales/zh-CN.ftl"),
        }
    }

    /// The language a BCP 47 tag asks for, if we have it: `en`, `en-GB` → English; `zh`,
    /// `zh-CN`, `zh-Hans`, `zh-SG` → Simplified Chinese. Traditional Chinese (`zh-TW`,
    /// `zh-HK`, `zh-MO`, `zh-Hant`) is not Simplified Chinese, so it does not match.
    pub fn from_tag(tag: &str) -> Option<Lang> {
        let id: LanguageIdentifier = tag.trim().parse().ok()?;
        match id.language.as_str() {
            "en" => Some(Lang::En),
            "zh" => {
                let script = id.script.map(|s| s.as_str().to_ascii_lowercase());
                let region = id.region.map(|r| r.as_str().to_ascii_uppercase());
                let traditional = match script.as_deref() {
                    Some("hans") => false,
                    Some(_) => true,
                    None => matches!(region.as_deref(), Some("TW" | "HK" | "MO")),
                };
                (!traditional).then_some(Lang::ZhCn)
            }
            _ => None,
        }
    }

    /// The first language of a preference list that we have.
    pub fn first_supported<'a>(tags: impl IntoIterator<Item = &'a str>) -> Option<Lang> {
        tags.into_iter().find_map(Lang::from_tag)
    }

    /// OIDC Core §3.1.2.1 `ui_locales`: space-separated tags, most preferred first.
    pub fn from_ui_locales(ui_locales: &str) -> Option<Lang> {
        Lang::first_supported(ui_locales.split_ascii_whitespace())
    }

    /// An `Accept-Language` header (RFC 9110 §12.5.4): the supported language with the
    /// highest weight (`q=0` means "not this one"); ties keep the header's order.
    pub fn from_accept_language(header: &str) -> Option<Lang> {
        let mut ranked: Vec<(u16, &str)> = header
            .split(',')
            .filter_map(|item| {
                let mut parts = item.split(';');
                let tag = parts.next()?.trim();
                let q = parts
                    .filter_map(|p| p.trim().strip_prefix("q="))
                    .next()
                    .map_or(Some(1000), parse_weight)?;
                (q > 0 && !tag.is_empty()).then_some((q, tag))
            })
            .collect();
        // Stable: equal weights keep the order they were listed in.
        ranked.sort_by_key(|&(q, _)| std::cmp::Reverse(q));
        Lang::first_supported(ranked.into_iter().map(|(_, tag)| tag))
    }

    /// How a request's language is chosen, strongest first: the visitor's own pick with the
    /// language switch, the relying party's `ui_locales`, `Accept-Language`, then the server's
    /// `--default-locale`.
    pub fn negotiate(
        picked: Option<&str>,
        ui_locales: Option<&str>,
        accept_language: Option<&str>,
        default: Lang,
    ) -> Lang {
        picked
            .and_then(Lang::from_tag)
            .or_else(|| ui_locales.and_then(Lang::from_ui_locales))
            .or_else(|| accept_language.and_then(Lang::from_accept_language))
            .unwrap_or(default)
    }
}

/// An RFC 9110 `qvalue` in thousandths: `0`–`1` with at most three decimals.
fn parse_weight(text: &str) -> Option<u16> {
    let text = text.trim();
    let (whole, fraction) = text.split_once('.').unwrap_or((text, ""));
    if fraction.len() > 3 || !fraction.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let thousandths = format!("{fraction:0<3}").parse::<u16>().ok()?;
    match whole {
        "0" => Some(thousandths),
        "1" if thousandths == 0 => Some(1000),
        _ => None,
    }
}

/// A value for a placeholder of a message: text, a number (numbers choose plural forms), or
/// another message, written in the same language ("Try again in { $wait }").
#[derive(Debug, Clone, PartialEq)]
pub enum Arg {
    Text(String),
    Number(i64),
    Msg(Box<Msg>),
}

impl From<Msg> for Arg {
    fn from(m: Msg) -> Self {
        Arg::Msg(Box::new(m))
    }
}

impl From<&str> for Arg {
    fn from(s: &str) -> Self {
        Arg::Text(s.to_string())
    }
}

impl From<String> for Arg {
    fn from(s: String) -> Self {
        Arg::Text(s)
    }
}

impl From<&String> for Arg {
    fn from(s: &String) -> Self {
        Arg::Text(s.clone())
    }
}

impl From<i64> for Arg {
    fn from(n: i64) -> Self {
        Arg::Number(n)
    }
}

impl From<u64> for Arg {
    fn from(n: u64) -> Self {
        Arg::Number(i64::try_from(n).unwrap_or(i64::MAX))
    }
}

impl From<usize> for Arg {
    fn from(n: usize) -> Self {
        Arg::Number(i64::try_from(n).unwrap_or(i64::MAX))
    }
}

/// A message to show, not yet in any language: a catalogue key and its placeholders. Code
/// that decides *what* to say builds one; the page or mail renders it in the reader's
/// language.
#[derive(Debug, Clone, PartialEq)]
pub struct Msg {
    key: &'static str,
    args: Vec<(&'static str, Arg)>,
}

impl Msg {
    /// A message without placeholders.
    pub fn new(key: &'static str) -> Self {
        Self {
            key,
            args: Vec::new(),
        }
    }

    /// Adds a placeholder's value.
    pub fn with(mut self, name: &'static str, value: impl Into<Arg>) -> Self {
        self.args.push((name, value.into()));
        self
    }

    /// The catalogue key.
    pub fn key(&self) -> &'static str {
        self.key
    }
}

impl From<&'static str> for Msg {
    fn from(key: &'static str) -> Self {
        Msg::new(key)
    }
}

/// How support is reached, shown at the foot of every page and mail.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Support {
    Email(String),
    Url(String),
}

impl Support {
    /// `--support-contact`: an email address or an http(s) URL.
    pub fn parse(text: &str) -> Result<Support, String> {
        let text = text.trim();
        if text.starts_with("https://") || text.starts_with("http://") {
            url::Url::parse(text)
                .map(|_| Support::Url(text.to_string()))
                .map_err(|e| format!("--support-contact {text:?}: not a URL ({e})"))
        } else if crate::domain::Email::parse(text).is_ok() {
            Ok(Support::Email(text.to_string()))
        } else {
            Err(format!(
                "--support-contact {text:?}: give an email address or an http(s) URL"
            ))
        }
    }

    /// The link target (`mailto:` for an address).
    pub fn href(&self) -> String {
        match self {
            Support::Email(a) => format!("mailto:{a}"),
            Support::Url(u) => u.clone(),
        }
    }

    /// What the reader sees.
    pub fn label(&self) -> &str {
        match self {
            Support::Email(a) | Support::Url(a) => a,
        }
    }
}

/// The operator's logo, read once at start and served at `/ui/logo`.
#[derive(Debug, Clone)]
pub struct Logo {
    pub bytes: Arc<[u8]>,
    pub content_type: &'static str,
}

/// The largest logo file accepted.
const MAX_LOGO_BYTES: u64 = 512 * 1024;

impl Logo {
    /// Reads a PNG, JPEG, GIF, WebP or SVG file (by its extension).
    pub fn read(path: &Path) -> Result<Logo, String> {
        let shown = path.display();
        let extension = path
            .extension()
            .and_then(|e| e.to_str())
            .map(str::to_ascii_lowercase);
        let content_type = match extension.as_deref() {
            Some("png") => "image/png",
            Some("jpg" | "jpeg") => "image/jpeg",
            Some("gif") => "image/gif",
            Some("webp") => "image/webp",
            Some("svg") => "image/svg+xml",
            _ => {
                return Err(format!(
                    "--brand-logo {shown}: use a .png, .jpg, .gif, .webp or .svg file"
                ));
            }
        };
        let size = std::fs::metadata(path)
            .map_err(|e| format!("--brand-logo {shown}: {e}"))?
            .len();
        if size > MAX_LOGO_BYTES {
            return Err(format!(
                "--brand-logo {shown}: {size} bytes; a logo may have at most {MAX_LOGO_BYTES}"
            ));
        }
        let bytes = std::fs::read(path).map_err(|e| format!("--brand-logo {shown}: {e}"))?;
        Ok(Logo {
            bytes: bytes.into(),
            content_type,
        })
    }
}

/// A CSS colour in hex (`#rgb` or `#rrggbb`), checked so it can go into the stylesheet.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Colour {
    rgb: [u8; 3],
}

impl Colour {
    pub fn parse(text: &str) -> Result<Colour, String> {
        let bad = || format!("--brand-color {text:?}: give a hex colour such as #2f5bd3");
        let hex = text.trim().strip_prefix('#').ok_or_else(bad)?;
        if !hex.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Err(bad());
        }
        let digit = |i: usize, len: usize| {
            u8::from_str_radix(&hex[i * len..(i + 1) * len], 16)
                .map(|v| if len == 1 { v * 17 } else { v })
        };
        let len = match hex.len() {
            3 => 1,
            6 => 2,
            _ => return Err(bad()),
        };
        let channel = |i| digit(i, len).map_err(|_| bad());
        Ok(Colour {
            rgb: [channel(0)?, channel(1)?, channel(2)?],
        })
    }

    /// `#rrggbb`.
    pub fn css(&self) -> String {
        let [r, g, b] = self.rgb;
        format!("#{r:02x}{g:02x}{b:02x}")
    }

    /// White or near-black, whichever reads better on this colour (WCAG 2 relative
    /// luminance; the crossover where both contrasts are equal is about 0.179).
    pub fn text_on(&self) -> &'static str {
        let linear = |c: u8| {
            let c = f64::from(c) / 255.0;
            if c <= 0.040_45 {
                c / 12.92
            } else {
                ((c + 0.055) / 1.055).powf(2.4)
            }
        };
        let [r, g, b] = self.rgb;
        let luminance = 0.2126 * linear(r) + 0.7152 * linear(g) + 0.0722 * linear(b);
        if luminance > 0.179 { "#111" } else { "#fff" }
    }
}

/// The operator's brand.
#[derive(Debug, Clone)]
pub struct Brand {
    /// The product name in page titles, headings, mail and authenticator apps.
    pub name: String,
    pub logo: Option<Logo>,
    pub accent: Option<Colour>,
    pub support: Option<Support>,
}

impl Default for Brand {
    fn default() -> Self {
        Self {
            name: "portcullis".into(),
            logo: None,
            accent: None,
            support: None,
        }
    }
}

impl Brand {
    /// The stylesheet rule that applies the accent colour (empty without one).
    pub fn stylesheet(&self) -> String {
        match &self.accent {
            Some(c) => format!(
                "\n:root {{ --accent: {}; --accent-text: {}; }}\n",
                c.css(),
                c.text_on()
            ),
            None => String::new(),
        }
    }
}

/// The catalogues of every language, the default language and the brand. Built once at
/// start; shared by the pages and the mail.
pub struct Texts {
    bundles: Vec<(Lang, FluentBundle<FluentResource>)>,
    /// `--default-locale`: the language when a request says nothing we have.
    pub default_lang: Lang,
    pub brand: Brand,
}

impl std::fmt::Debug for Texts {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Texts")
            .field("default_lang", &self.default_lang)
            .field("brand", &self.brand)
            .finish_non_exhaustive()
    }
}

impl Texts {
    /// Parses the built-in catalogues. A syntax error in one is a bug in this build, caught
    /// by the tests; it is reported rather than half-loaded.
    pub fn new(default_lang: Lang, brand: Brand) -> Result<Texts, String> {
        let bundles = Lang::ALL
            .iter()
            .map(|&lang| {
                let resource = FluentResource::try_new(lang.catalogue().to_string()).map_err(
                    |(_, errors)| {
                        format!("the {} catalogue does not parse: {errors:?}", lang.tag())
                    },
                )?;
                let id: LanguageIdentifier = lang
                    .tag()
                    .parse()
                    .map_err(|e| format!("language tag {}: {e}", lang.tag()))?;
                let mut bundle = FluentBundle::new_concurrent(vec![id]);
                // Unicode isolation marks around placeholders would end up in mail subjects
                // and input values; our placeholders are never right-to-left.
                bundle.set_use_isolating(false);
                bundle.add_resource(resource).map_err(|errors| {
                    format!("the {} catalogue repeats keys: {errors:?}", lang.tag())
                })?;
                Ok((lang, bundle))
            })
            .collect::<Result<Vec<_>, String>>()?;
        Ok(Texts {
            bundles,
            default_lang,
            brand,
        })
    }

    /// English texts with the default brand (tests and tools).
    pub fn built_in() -> Arc<Texts> {
        Arc::new(
            Texts::new(Lang::En, Brand::default())
                .unwrap_or_else(|e| panic!("the built-in catalogues: {e}")),
        )
    }

    fn bundle(&self, lang: Lang) -> Option<&FluentBundle<FluentResource>> {
        self.bundles
            .iter()
            .find(|(l, _)| *l == lang)
            .map(|(_, b)| b)
    }

    /// The message `key` in `lang` with its placeholders filled; English when `lang` lacks
    /// it, and the key itself (logged) when no catalogue has it.
    pub fn text(&self, lang: Lang, key: &str, args: &[(&str, Arg)]) -> String {
        let mut fluent_args = FluentArgs::new();
        for (name, value) in args {
            let value = match value {
                Arg::Text(s) => FluentValue::from(s.as_str()),
                Arg::Number(n) => FluentValue::from(*n),
                Arg::Msg(m) => FluentValue::from(self.msg(lang, m)),
            };
            fluent_args.set(*name, value);
        }
        for candidate in [lang, Lang::En] {
            let Some(bundle) = self.bundle(candidate) else {
                continue;
            };
            let Some(pattern) = bundle.get_message(key).and_then(|m| m.value()) else {
                continue;
            };
            let mut errors = Vec::new();
            let text = bundle.format_pattern(pattern, Some(&fluent_args), &mut errors);
            if !errors.is_empty() {
                tracing::warn!(
                    key,
                    lang = candidate.tag(),
                    ?errors,
                    "a message lacks a value"
                );
            }
            return text.into_owned();
        }
        tracing::warn!(key, "no catalogue has this message");
        key.to_string()
    }

    /// A [`Msg`] in `lang`.
    pub fn msg(&self, lang: Lang, msg: &Msg) -> String {
        let args: Vec<(&str, Arg)> = msg.args.iter().map(|(n, v)| (*n, v.clone())).collect();
        self.text(lang, msg.key, &args)
    }

    /// A [`Msg`] in the server's default language (for logs and API answers that have no
    /// reader's language).
    pub fn default_text(&self, msg: &Msg) -> String {
        self.msg(self.default_lang, msg)
    }

    /// The keys of a language's catalogue (for the completeness test).
    pub fn keys(lang: Lang) -> Vec<String> {
        let resource = match FluentResource::try_new(lang.catalogue().to_string()) {
            Ok(r) | Err((r, _)) => r,
        };
        resource
            .entries()
            .filter_map(|entry| match entry {
                fluent_syntax::ast::Entry::Message(m) => Some(m.id.name.to_string()),
                _ => None,
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tags_map_to_our_languages() {
        assert_eq!(Lang::from_tag("en"), Some(Lang::En));
        assert_eq!(Lang::from_tag("en-GB"), Some(Lang::En));
        assert_eq!(Lang::from_tag("zh"), Some(Lang::ZhCn));
        assert_eq!(Lang::from_tag("zh-CN"), Some(Lang::ZhCn));
        assert_eq!(Lang::from_tag("zh-Hans-CN"), Some(Lang::ZhCn));
        assert_eq!(Lang::from_tag("zh-SG"), Some(Lang::ZhCn));
        assert_eq!(Lang::from_tag("zh-TW"), None);
        assert_eq!(Lang::from_tag("zh-Hant"), None);
        assert_eq!(Lang::from_tag("fr"), None);
        assert_eq!(Lang::from_tag("not a tag!"), None);
    }

    #[test]
    fn accept_language_is_ranked_by_weight() {
        assert_eq!(
            Lang::from_accept_language("fr-CH, fr;q=0.9, zh-CN;q=0.8, en;q=0.7"),
            Some(Lang::ZhCn)
        );
        assert_eq!(
            Lang::from_accept_language("en;q=0.5, zh;q=0.9"),
            Some(Lang::ZhCn)
        );
        assert_eq!(Lang::from_accept_language("zh;q=0, en"), Some(Lang::En));
        assert_eq!(Lang::from_accept_language("de, fr"), None);
        assert_eq!(
            Lang::from_accept_language("zh-TW, en;q=0.1"),
            Some(Lang::En)
        );
        // A malformed weight drops that entry, not the header.
        assert_eq!(Lang::from_accept_language("zh;q=2, en"), Some(Lang::En));
        assert_eq!(Lang::from_accept_language(""), None);
    }

    #[test]
    fn the_pick_beats_ui_locales_which_beat_accept_language() {
        let n = Lang::negotiate;
        assert_eq!(
            n(Some("en"), Some("zh-CN"), Some("zh"), Lang::ZhCn),
            Lang::En
        );
        assert_eq!(n(None, Some("fr zh-CN"), Some("en"), Lang::En), Lang::ZhCn);
        assert_eq!(n(None, Some("fr"), Some("zh"), Lang::En), Lang::ZhCn);
        assert_eq!(n(Some("xx"), None, None, Lang::ZhCn), Lang::ZhCn);
    }

    #[test]
    fn colours_are_checked_and_get_a_readable_text_colour() {
        assert_eq!(
            Colour::parse("#2F5BD3").map(|c| c.css()),
            Ok("#2f5bd3".into())
        );
        assert_eq!(Colour::parse("#fc0").map(|c| c.css()), Ok("#ffcc00".into()));
        for bad in ["2f5bd3", "#12345", "#ggg", "#fff;}body{x:y", "red", "#"] {
            assert!(Colour::parse(bad).is_err(), "{bad}");
        }
        assert_eq!(Colour::parse("#ffcc00").map(|c| c.text_on()), Ok("#111"));
        assert_eq!(Colour::parse("#2f5bd3").map(|c| c.text_on()), Ok("#fff"));
    }

    #[test]
    fn support_is_an_address_or_a_web_link() {
        assert_eq!(
            Support::parse("help@example.test").map(|s| s.href()),
            Ok("mailto:help@example.test".into())
        );
        assert_eq!(
            Support::parse("https://help.example.test/").map(|s| s.href()),
            Ok("https://help.example.test/".into())
        );
        assert!(Support::parse("javascript:alert(1)").is_err());
        assert!(Support::parse("call us").is_err());
    }

    /// Every language has every message of every other, so no reader meets a fallback.
    #[test]
    fn every_catalogue_has_every_key() {
        let en: std::collections::BTreeSet<String> = Texts::keys(Lang::En).into_iter().collect();
        assert!(en.len() > 100, "the English catalogue looks truncated");
        for lang in Lang::ALL {
            let keys: std::collections::BTreeSet<String> = Texts::keys(lang).into_iter().collect();
            let missing: Vec<_> = en.difference(&keys).collect();
            let extra: Vec<_> = keys.difference(&en).collect();
            assert!(missing.is_empty(), "{} lacks {missing:?}", lang.tag());
            assert!(
                extra.is_empty(),
                "{} has keys English lacks: {extra:?}",
                lang.tag()
            );
        }
    }

    /// Every key the pages and mail name literally (`ui.t("…")`, `Msg::new("…")`, an error
    /// page's message) is in the catalogues: a typo fails here, not in front of a reader.
    #[test]
    fn every_key_the_code_uses_exists() {
        use std::path::Path;
        fn files(dir: &Path, out: &mut Vec<std::path::PathBuf>) {
            for entry in std::fs::read_dir(dir)
                .expect("readable source tree")
                .flatten()
            {
                let path = entry.path();
                if path.is_dir() {
                    files(&path, out);
                } else if path.extension().is_some_and(|e| e == "rs" || e == "html") {
                    out.push(path);
                }
            }
        }
        let root = Path::new(env!("CARGO_MANIFEST_DIR"));
        let mut paths = Vec::new();
        files(&root.join("src"), &mut paths);
        files(&root.join("templates"), &mut paths);
        let known: std::collections::BTreeSet<String> = Texts::keys(Lang::En).into_iter().collect();
        let markers = [
            "ui.t(\"",
            "ui.t1(\"",
            "ui.tn(\"",
            "Msg::new(\"",
            "error_page(StatusCode::",
        ];
        let mut used = 0;
        let mut missing = Vec::new();
        for path in paths {
            let text = std::fs::read_to_string(&path).expect("readable file");
            for marker in markers {
                for (at, _) in text.match_indices(marker) {
                    let rest = &text[at + marker.len()..];
                    // The first string literal after the marker, within the call.
                    let rest = if marker.ends_with('"') {
                        rest
                    } else {
                        match rest.find('"') {
                            Some(q) if !rest[..q].contains(')') => &rest[q + 1..],
                            _ => continue,
                        }
                    };
                    let Some(end) = rest.find('"') else { continue };
                    let key = &rest[..end];
                    if key.is_empty()
                        || !key
                            .bytes()
                            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
                    {
                        continue;
                    }
                    used += 1;
                    if !known.contains(key) && key != "no-such-key" {
                        missing.push(format!("{}: {key}", path.display()));
                    }
                }
            }
        }
        assert!(used > 200, "the scan found only {used} keys");
        assert!(
            missing.is_empty(),
            "keys missing from the catalogues: {missing:#?}"
        );
    }

    #[test]
    fn catalogues_parse_and_fill_placeholders() {
        let texts = Texts::built_in();
        assert_eq!(
            texts.text(Lang::En, "wait-minutes", &[("n", Arg::Number(1))]),
            "a minute"
        );
        assert_eq!(
            texts.text(Lang::En, "wait-minutes", &[("n", Arg::Number(15))]),
            "15 minutes"
        );
        assert_eq!(
            texts.text(Lang::ZhCn, "wait-minutes", &[("n", Arg::Number(15))]),
            "15 分钟"
        );
        assert_eq!(texts.text(Lang::En, "no-such-key", &[]), "no-such-key");
    }
}
