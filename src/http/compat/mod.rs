//! The compatible APIs: the three documents in `reference/`, each served exactly as written
//! (paths, parameter names, envelopes, in-body codes and messages) by a thin adapter over the
//! same services as the native API. One module per document.
//!
//! What the adapters share lives here: [`Params`], which reads parameters the way the
//! original servers did (query string, then a JSON object or form body on top, never failing
//! the request so each endpoint can answer with its own in-body code), the reply envelopes,
//! and [`Flavour`], which lets the outer middleware answer framework errors (wrong method,
//! unreadable upload) in each document's own terms.

pub mod account;
pub mod auth_server;
pub mod sso;

use std::borrow::Cow;

use poem::{Request, RequestBody};
use poem_openapi::{
    ApiExtractor, ApiExtractorType, ExtractParamOptions, Object,
    registry::{MetaMediaType, MetaRequest, MetaSchemaRef, Registry},
    types::{ParseFromJSON, ToJSON, Type},
};
use serde::de::DeserializeOwned;
use serde_json::{Map, Value};

use crate::service::{Credential, Principal, Services};

/// Which document a path belongs to (DESIGN "Path space": the compatible APIs own
/// `/register/`, `/login/`, `/auth/`, `/oauth/*` and `/api/<name>`; `/api/v1` is native).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Flavour {
    Sso,
    Account,
    AuthServer,
}

impl Flavour {
    pub fn of_path(path: &str) -> Option<Self> {
        match path {
            "/register/" | "/login/" | "/auth/" | "/oauth/" => Some(Self::Sso),
            p if p.starts_with("/oauth/") => Some(Self::AuthServer),
            p if p.starts_with("/api/") && !p.starts_with("/api/v1/") && p != "/api/v1" => {
                Some(Self::Account)
            }
            _ => None,
        }
    }
}

/// The documents' paths that end in `/`. poem-openapi drops trailing slashes from routes and
/// from the spec, so the middleware routes `/x/` to `/x` ([`route_path`]) and the spec gets
/// its slashes back from this list.
pub const TRAILING_SLASH_PATHS: &[&str] = &[
    "/register",
    "/login",
    "/auth",
    "/oauth",
    "/api/user_info",
    "/api/update_password",
    "/api/update_show_name",
    "/api/update_key",
    "/api/forget_password",
    "/api/upload_avatar",
    "/api/get_verification_code",
];

/// The path a compatible API's request is routed by: without its trailing slash.
pub fn route_path(path: &str) -> Option<&str> {
    Flavour::of_path(path)?;
    path.strip_suffix('/').filter(|p| !p.is_empty())
}

/// Answers an error that escaped an operation of a compatible API in that document's terms,
/// or `None` to fall back to problem+json.
pub fn framework_error(flavour: Flavour, err: &poem::Error) -> Option<poem::Response> {
    use poem::IntoResponse;
    let reply = |code, message| {
        poem_openapi::payload::Json(account::AccountReply::text(code, message)).into_response()
    };
    match flavour {
        // account-api.md: every endpoint answers a wrong method with in-body 500.
        Flavour::Account if err.is::<poem::error::MethodNotAllowedError>() => {
            Some(reply(500, account::POST_ONLY))
        }
        // The upload's multipart body could not be read (the only body the framework parses
        // on these paths): the document's catch-all code.
        Flavour::Account
            if err.is::<poem_openapi::error::ParseMultipartError>()
                || err.is::<poem_openapi::error::ContentTypeError>()
                || err.status() == poem::http::StatusCode::BAD_REQUEST =>
        {
            Some(reply(169, account::UPLOAD_FAILED))
        }
        _ => None,
    }
}

/// Why parameters could not be read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ParamsError {
    /// No body and no query parameters at all.
    Missing,
    /// Unreadable body (bad JSON, bad UTF-8, not an object) or a field of the wrong type.
    Malformed(String),
}

/// The parameters of a compatible endpoint: the query string, with the fields of a JSON
/// object or form body on top. Extraction never fails the request; the endpoint turns a
/// [`ParamsError`] into its document's in-body code.
pub struct Params<T>(pub Result<T, ParamsError>);

impl<T> Params<T> {
    pub fn into_inner(self) -> Result<T, ParamsError> {
        self.0
    }
}

impl<'a, T> ApiExtractor<'a> for Params<T>
where
    T: Type + ParseFromJSON + DeserializeOwned + Send,
{
    const TYPES: &'static [ApiExtractorType] = &[ApiExtractorType::RequestObject];
    type ParamType = ();
    type ParamRawType = ();

    fn register(registry: &mut Registry) {
        T::register(registry);
    }

    fn request_meta() -> Option<MetaRequest> {
        let media = |content_type| MetaMediaType {
            content_type,
            schema: T::schema_ref(),
        };
        Some(MetaRequest {
            description: Some("Accepted as JSON or as form fields (and in the query string)."),
            content: vec![
                media("application/json"),
                media("application/x-www-form-urlencoded"),
            ],
            required: false,
        })
    }

    async fn from_request(
        request: &'a Request,
        body: &mut RequestBody,
        _opts: ExtractParamOptions<()>,
    ) -> poem::Result<Self> {
        let bytes = match body.take() {
            Ok(b) => b.into_vec().await.map_err(|e| e.to_string()),
            Err(_) => Ok(Vec::new()),
        };
        Ok(Self(match bytes {
            Ok(bytes) => parse(request, &bytes),
            Err(e) => Err(ParamsError::Malformed(e)),
        }))
    }
}

/// Fields that carry a password or secret. None of the documents puts them in the query
/// string, where proxies, logs and browser history keep them; there they are refused
/// (OWASP ASVS V14.2.1) instead of read.
const SECRET_FIELDS: &[&str] = &[
    "password",
    "passwd",
    "old_passwd",
    "new_passwd",
    "old_password",
    "new_password",
    "client_secret",
    "secret_value",
    "key",
];

fn parse<T: DeserializeOwned>(request: &Request, body: &[u8]) -> Result<T, ParamsError> {
    let mut map = Map::new();
    let query = request.uri().query().unwrap_or_default();
    add_pairs(&mut map, query.as_bytes());
    if let Some(field) = SECRET_FIELDS.iter().find(|f| map.contains_key(**f)) {
        return Err(ParamsError::Malformed(format!(
            "`{field}` may not be sent in the query string; send it in the body"
        )));
    }
    let body_is_blank = body.iter().all(u8::is_ascii_whitespace);
    if !body_is_blank {
        let text = std::str::from_utf8(body).map_err(|e| {
            ParamsError::Malformed(format!("the body is not UTF-8 (byte {})", e.valid_up_to()))
        })?;
        let is_form = request
            .content_type()
            .is_some_and(|c| c.starts_with("application/x-www-form-urlencoded"));
        if is_form {
            add_pairs(&mut map, text.as_bytes());
        } else {
            // JSON whatever the declared type: the original clients did not always set one.
            match serde_json::from_str::<Value>(text) {
                Ok(Value::Object(fields)) => map.extend(fields),
                Ok(_) => {
                    return Err(ParamsError::Malformed(
                        "the body is not a JSON object".into(),
                    ));
                }
                Err(e) => return Err(ParamsError::Malformed(format!("invalid JSON: {e}"))),
            }
        }
    }
    if map.is_empty() && body_is_blank {
        return Err(ParamsError::Missing);
    }
    serde_json::from_value(Value::Object(map)).map_err(|e| ParamsError::Malformed(e.to_string()))
}

/// Adds `k=v` pairs; a key given twice becomes a list.
fn add_pairs(map: &mut Map<String, Value>, encoded: &[u8]) {
    for (k, v) in url::form_urlencoded::parse(encoded) {
        let v = Value::String(v.into_owned());
        match map.get_mut(k.as_ref()) {
            Some(Value::Array(items)) => items.push(v),
            Some(existing) => {
                let first = existing.take();
                *existing = Value::Array(vec![first, v]);
            }
            None => {
                map.insert(k.into_owned(), v);
            }
        }
    }
}

/// `true` / `false` as a JSON boolean or as the text a form sends.
pub fn flag<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<bool>, D::Error> {
    match Option::<Value>::deserialize(d)? {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Bool(b)) => Ok(Some(b)),
        Some(Value::String(s)) if s.eq_ignore_ascii_case("true") || s == "1" => Ok(Some(true)),
        Some(Value::String(s)) if s.eq_ignore_ascii_case("false") || s == "0" || s.is_empty() => {
            Ok(Some(false))
        }
        Some(other) => Err(serde::de::Error::custom(format!(
            "expected true or false, got {other}"
        ))),
    }
}

/// A list of strings from a JSON array, or from one text (space or comma separated) or
/// repeated form fields.
pub fn string_list<'de, D: serde::Deserializer<'de>>(
    d: D,
) -> Result<Option<Vec<String>>, D::Error> {
    match Option::<Value>::deserialize(d)? {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => Ok(Some(
            s.split([' ', ','])
                .filter(|p| !p.is_empty())
                .map(str::to_string)
                .collect(),
        )),
        Some(Value::Array(items)) => items
            .into_iter()
            .map(|v| match v {
                Value::String(s) => Ok(s),
                other => Err(serde::de::Error::custom(format!(
                    "expected a list of strings, found {other}"
                ))),
            })
            .collect::<Result<Vec<_>, _>>()
            .map(Some),
        Some(other) => Err(serde::de::Error::custom(format!(
            "expected a list of strings, found {other}"
        ))),
    }
}

use serde::Deserialize;

/// The envelope of the SSO and auth-server documents: `{code, message, data}`, always HTTP
/// 200; `data` is `null` on errors.
#[derive(Debug, Object)]
pub struct Envelope<T: ParseFromJSON + ToJSON + Send + Sync> {
    /// The document's in-body status code (200 on success).
    pub code: i32,
    /// The document's message, verbatim.
    pub message: String,
    /// `null` on failure and for answers without data.
    #[oai(nullable)]
    pub data: Option<T>,
}

impl<T: ParseFromJSON + ToJSON + Send + Sync> Envelope<T> {
    pub fn ok(message: &str, data: T) -> Self {
        Self {
            code: 200,
            message: message.into(),
            data: Some(data),
        }
    }

    /// Success without data (`data: null`).
    pub fn done(message: &str) -> Self {
        Self::error(200, message)
    }

    pub fn error(code: i32, message: impl Into<String>) -> Self {
        Self {
            code,
            message: message.into(),
            data: None,
        }
    }
}

/// `data: null` in an envelope that never carries data.
#[derive(Debug, Clone, Copy)]
pub struct Nothing;

impl Type for Nothing {
    const IS_REQUIRED: bool = false;
    type RawValueType = ();
    type RawElementValueType = ();

    fn name() -> Cow<'static, str> {
        "null".into()
    }

    fn schema_ref() -> MetaSchemaRef {
        MetaSchemaRef::Inline(Box::new(poem_openapi::registry::MetaSchema {
            nullable: true,
            ..poem_openapi::registry::MetaSchema::new("object")
        }))
    }

    fn as_raw_value(&self) -> Option<&()> {
        None
    }

    fn raw_element_iter<'a>(&'a self) -> Box<dyn Iterator<Item = &'a ()> + 'a> {
        Box::new(std::iter::empty())
    }
}

impl ParseFromJSON for Nothing {
    fn parse_from_json(_: Option<Value>) -> poem_openapi::types::ParseResult<Self> {
        Ok(Nothing)
    }
}

impl ToJSON for Nothing {
    fn to_json(&self) -> Option<Value> {
        Some(Value::Null)
    }
}

/// The user a bearer token or API key stands for; `None` for anything not live. Adapters
/// accept the same credentials as the native API (first-party access tokens, API keys).
pub async fn principal(services: &Services, token: &str) -> Option<Principal> {
    // The SSO document sends the token with or without the `Bearer ` scheme.
    let token = crate::http::bearer_token(token).unwrap_or(token.trim());
    if token.is_empty() {
        return None;
    }
    match services
        .sessions
        .authenticate(Credential::Bearer(token.to_string()))
        .await
    {
        Ok(p) => Some(p),
        Err(crate::service::ServiceError::InvalidToken) => None,
        // The documents have no code for "try again later": answer as not live, but log it.
        Err(e) => {
            tracing::error!(error = %e, "token check failed");
            None
        }
    }
}

/// The caller (address, user agent) for login throttling and the audit trail.
pub fn origin(
    services: &Services,
    req: &Request,
    surface: &'static str,
) -> crate::service::audit::Origin {
    crate::http::origin(req, services.trust_forwarded_for, surface)
}

/// The field's value, unless it is absent or only whitespace.
pub fn given(v: &Option<String>) -> Option<&str> {
    v.as_deref().filter(|s| !s.trim().is_empty())
}

/// The SSO and auth-server answer to parameters that are missing or unreadable.
pub const BAD_PARAMS: &str = "参数错误";

/// The in-body code and message for failures a document does not list, used by the SSO and
/// auth-server adapters: HTTP-like codes, Chinese messages in the documents' style, and for
/// rule violations the rule itself (in English, as the native API words it).
pub fn undocumented(e: &crate::service::ServiceError) -> (i32, String) {
    use crate::service::ServiceError as E;
    match e {
        E::Invalid(inv) => (400, format!("参数不合法: {inv}")),
        E::WeakPassword(w) => (400, format!("密码强度不够: {w}")),
        E::UsernameTaken => (409, "用户名已存在".into()),
        E::EmailTaken => (409, "该邮箱已被绑定".into()),
        E::InvalidCredentials => (401, "用户名或密码错误".into()),
        E::InvalidToken => (401, "token无效或已过期".into()),
        E::RateLimited { retry_after } => (429, format!("尝试次数过多，请{retry_after}秒后再试")),
        E::Overloaded { retry_after } => (503, format!("服务器繁忙，请{retry_after}秒后再试")),
        E::RegistrationClosed => (403, "注册功能未开启".into()),
        E::InvalidRegistrationKey => (403, "注册密钥错误".into()),
        E::EmailCodeRequired => (400, "需要邮箱验证码 (email_code)".into()),
        E::InvalidCode => (400, "验证码错误".into()),
        E::CodeExpired => (400, "验证码过期".into()),
        E::ResendTooSoon { .. } => (400, "验证码依然有效".into()),
        E::CaptchaRequired => (400, "需要图形验证码 (captcha_id, captcha_answer)".into()),
        E::CaptchaInvalid => (400, "图形验证码错误或已过期".into()),
        E::MailUnavailable => (503, "邮件服务暂时不可用，请稍后再试".into()),
        E::Unavailable(cause) => {
            tracing::warn!(error = %cause, "compatible API: storage unavailable");
            (503, "存储暂时不可用，未做任何更改，请稍后再试".into())
        }
        E::Forbidden(_, m) => (403, m.clone()),
        other => {
            tracing::error!(error = %other, "compatible API failure");
            (500, "服务器内部错误".into())
        }
    }
}

/// An envelope carrying [`undocumented`]'s code and message.
pub fn failed<T: ParseFromJSON + ToJSON + Send + Sync>(
    e: &crate::service::ServiceError,
) -> poem_openapi::payload::Json<Envelope<T>> {
    let (code, message) = undocumented(e);
    poem_openapi::payload::Json(Envelope::error(code, message))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn documented_slashes_are_stripped_for_routing_only_on_compatible_paths() {
        assert_eq!(route_path("/register/"), Some("/register"));
        assert_eq!(route_path("/api/user_info/"), Some("/api/user_info"));
        assert_eq!(route_path("/api/login"), None);
        assert_eq!(route_path("/api/v1/me/"), None);
        assert_eq!(route_path("/ui/login/"), None);
    }

    #[test]
    fn paths_map_to_their_document() {
        assert_eq!(Flavour::of_path("/login/"), Some(Flavour::Sso));
        assert_eq!(Flavour::of_path("/oauth/"), Some(Flavour::Sso));
        assert_eq!(Flavour::of_path("/oauth/token"), Some(Flavour::AuthServer));
        assert_eq!(Flavour::of_path("/api/login"), Some(Flavour::Account));
        assert_eq!(Flavour::of_path("/api/v1/sessions"), None);
        assert_eq!(Flavour::of_path("/oauth2/token"), None);
        assert_eq!(Flavour::of_path("/login"), None);
    }

    #[derive(Debug, Deserialize, PartialEq)]
    struct P {
        a: Option<String>,
        b: Option<String>,
    }

    fn request(uri: &str, content_type: Option<&str>) -> Request {
        let mut r = Request::builder().uri(uri.parse().unwrap());
        if let Some(ct) = content_type {
            r = r.content_type(ct);
        }
        r.finish()
    }

    #[test]
    fn query_and_body_merge_with_the_body_on_top() {
        let p: P = parse(
            &request("/x?a=1&b=2", Some("application/json")),
            br#"{"b":"3"}"#,
        )
        .unwrap();
        assert_eq!(
            p,
            P {
                a: Some("1".into()),
                b: Some("3".into())
            }
        );
        let p: P = parse(
            &request("/x?a=1", Some("application/x-www-form-urlencoded")),
            b"b=%E5%B0%8F",
        )
        .unwrap();
        assert_eq!(p.b.as_deref(), Some("小"));
    }

    #[test]
    fn nothing_sent_wrong_types_and_bad_bodies_are_told_apart() {
        assert_eq!(
            parse::<P>(&request("/x", None), b"").unwrap_err(),
            ParamsError::Missing
        );
        for body in [&b"{"[..], b"[1]", b"\xff\xfe", br#"{"a":5}"#] {
            assert!(
                matches!(
                    parse::<P>(&request("/x", None), body),
                    Err(ParamsError::Malformed(_))
                ),
                "{body:?}"
            );
        }
    }

    #[test]
    fn repeated_form_keys_become_a_list() {
        let mut map = Map::new();
        add_pairs(&mut map, b"a=1&b=x&b=y&b=z");
        assert_eq!(map["a"], "1");
        assert_eq!(map["b"], serde_json::json!(["x", "y", "z"]));
    }

    proptest::proptest! {
        /// Whatever the query and body, parameters are read or refused with a reason: never a
        /// panic, and never a field that was not sent.
        #[test]
        fn any_query_and_body_give_params_or_a_reason(
            query in "[a-z=&%0-9]{0,40}",
            body in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..200),
            form in proptest::prelude::any::<bool>(),
        ) {
            let uri = format!("/x?{query}");
            let Ok(parsed) = uri.parse::<poem::http::Uri>() else { return Ok(()) };
            let req = request(&parsed.to_string(), Some(if form {
                "application/x-www-form-urlencoded"
            } else {
                "application/json"
            }));
            match parse::<serde_json::Map<String, serde_json::Value>>(&req, &body) {
                Ok(map) => {
                    let body_text = String::from_utf8_lossy(&body);
                    for key in map.keys() {
                        proptest::prop_assert!(
                            query.contains(key.as_str()) || body_text.contains(key.as_str())
                                || url::form_urlencoded::parse(query.as_bytes()).any(|(k, _)| k == *key)
                                || url::form_urlencoded::parse(&body).any(|(k, _)| k == *key),
                            "{key} came from nowhere"
                        );
                    }
                }
                Err(ParamsError::Missing) => proptest::prop_assert!(body.iter().all(u8::is_ascii_whitespace)),
                Err(ParamsError::Malformed(reason)) => proptest::prop_assert!(!reason.is_empty()),
            }
        }

        #[test]
        fn secrets_in_the_query_are_refused(field in proptest::sample::select(SECRET_FIELDS), value in "[a-z0-9]{1,12}") {
            let req = request(&format!("/x?{field}={value}"), Some("application/json"));
            let result = parse::<serde_json::Map<String, serde_json::Value>>(&req, b"{}");
            proptest::prop_assert!(matches!(result, Err(ParamsError::Malformed(_))), "{field}");
        }
    }
}
