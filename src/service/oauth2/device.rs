//! The Device Authorization Grant (RFC 8628) for devices without a browser (CLIs, TVs): the
//! device asks for a code pair (§3.1–3.2), the user types the short code on `/ui/device`
//! in any browser and approves through the same login and consent pages as an
//! authorization request, while the device polls the token endpoint (§3.4–3.5).

use rand::Rng;

use super::{OAuth2, OAuthError, PresentedClient, TokenRequest, TokenResponse, authorize::Pending};
use crate::{
    service::{ServiceError, clients::DEVICE_CODE_GRANT},
    store::{
        authz::{AuthRequestRecord, NewSession},
        device::{DeviceCodeRecord, DevicePoll, DeviceState, hex, unhex},
        records::ClientRecord,
    },
    token::opaque,
};

/// Seconds a device authorization waits for the user (§3.2 `expires_in`).
pub const DEVICE_CODE_TTL: i64 = 600;
/// Seconds between polls (§3.2 `interval`; §3.5 adds 5 on each `slow_down`).
pub const POLL_INTERVAL: i64 = 5;
/// §6.1: user codes from 20 consonants (no vowels: no words; no look-alike digits), eight
/// of them: 20⁸ ≈ 2³⁴ codes.
const USER_CODE_ALPHABET: &[u8] = b"BCDFGHJKLMNPQRSTVWXZ";
const USER_CODE_LEN: usize = 8;
/// Where the device page goes when the user has decided.
pub const DEVICE_PAGE_APPROVED: &str = "/ui/device?done=approved";
pub const DEVICE_PAGE_DENIED: &str = "/ui/device?done=denied";
pub const DEVICE_PAGE_EXPIRED: &str = "/ui/device?done=expired";

/// The answer of the device authorization endpoint (§3.2).
#[derive(Debug, Clone)]
pub struct DeviceAuthorization {
    pub device_code: String,
    /// As shown to the user: `BCDF-GHJK`.
    pub user_code: String,
    pub verification_uri: String,
    pub verification_uri_complete: String,
    pub expires_in: i64,
    pub interval: i64,
}

/// A typed user code as stored: upper case, without dashes or spaces (§6.1: "case
/// insensitive", punctuation ignored).
pub fn normalize_user_code(typed: &str) -> String {
    typed
        .chars()
        .filter(|c| c.is_ascii_alphanumeric())
        .map(|c| c.to_ascii_uppercase())
        .collect()
}

fn new_user_code() -> String {
    let mut rng = rand::rng();
    (0..USER_CODE_LEN)
        .map(|_| USER_CODE_ALPHABET[rng.random_range(0..USER_CODE_ALPHABET.len())] as char)
        .collect()
}

impl OAuth2 {
    /// `POST /oauth2/device_authorization` (§3.1): a client allowed the device grant asks
    /// for a device code and a user code.
    pub async fn begin_device_authorization(
        &self,
        presented: &PresentedClient,
        scope: Option<&str>,
    ) -> Result<DeviceAuthorization, OAuthError> {
        let client = self.authenticate_client(presented).await?;
        if !client.grant_types.iter().any(|g| g == DEVICE_CODE_GRANT) {
            return Err(OAuthError::UnauthorizedClient(
                "this client may not use the device authorization grant".into(),
            ));
        }
        let scope = super::grant_scope(&client, scope, false)?;
        let now = self.store().clock().now();
        // A clash of user codes among the live ones is unlikely; draw again when it happens.
        for _ in 0..5 {
            let device_code = opaque::random_token(32);
            let user_code = new_user_code();
            let record = DeviceCodeRecord {
                client_id: client.client_id.clone(),
                scope: scope.to_string(),
                user_code: user_code.clone(),
                expires_at: now + DEVICE_CODE_TTL,
                interval: POLL_INTERVAL,
                last_poll: 0,
                state: DeviceState::Pending,
            };
            let hash = opaque::digest(&device_code);
            if self
                .store()
                .run(move |s| s.put_device_code(hash, &record))
                .await?
            {
                let shown = format!("{}-{}", &user_code[..4], &user_code[4..]);
                let page = format!("{}/ui/device", self.issuer());
                return Ok(DeviceAuthorization {
                    device_code,
                    verification_uri_complete: format!("{page}?user_code={shown}"),
                    verification_uri: page,
                    user_code: shown,
                    expires_in: DEVICE_CODE_TTL,
                    interval: POLL_INTERVAL,
                });
            }
        }
        Err(OAuthError::ServerError(
            "no free user code after five draws".into(),
        ))
    }

    /// The user typed `user_code` on the device page: a pending request for the login and
    /// consent pages, or `None` when the code is unknown, expired or already decided.
    pub async fn device_request(&self, user_code: &str) -> Result<Option<Pending>, ServiceError> {
        let code = normalize_user_code(user_code);
        if code.len() != USER_CODE_LEN {
            return Ok(None);
        }
        let Some((hash, device)) = self
            .store()
            .run(move |s| s.device_by_user_code(&code))
            .await?
        else {
            return Ok(None);
        };
        let cid = device.client_id.clone();
        let Some(client) = self.store().run(move |s| s.get_client(&cid)).await? else {
            return Ok(None);
        };
        let now = self.store().clock().now();
        let request = AuthRequestRecord {
            mfa_demanded: client.require_mfa,
            client_id: client.client_id.clone(),
            redirect_uri: String::new(),
            scope: device.scope.clone(),
            state: None,
            nonce: None,
            code_challenge: None,
            expires_at: device.expires_at.min(now + 600),
            created_at: now,
            prompt_login: false,
            prompt_none: false,
            max_age: None,
            login_hint: None,
            id_token_hint: None,
            device: Some(hex(&hash)),
            ui_locales: None,
        };
        let id = opaque::random_token(16);
        let (rid, rec) = (id.clone(), request.clone());
        self.store()
            .run(move |s| s.put_auth_request(&rid, &rec))
            .await?;
        Ok(Some(Pending {
            id,
            request,
            client: client.into(),
        }))
    }

    /// Records the user's decision on the device authorization behind `pending` and ends
    /// the pending request; returns the device page to show. `None`: the request was
    /// already completed.
    pub(super) async fn finish_device_request(
        &self,
        pending: &Pending,
        device_hex: &str,
        decision: DeviceState,
    ) -> Result<Option<String>, ServiceError> {
        let id = pending.id.clone();
        if !self
            .store()
            .run(move |s| s.complete_auth_request(&id, None, None))
            .await?
        {
            return Ok(None);
        }
        let Some(hash) = unhex(device_hex) else {
            return Ok(Some(DEVICE_PAGE_EXPIRED.into()));
        };
        let approved = matches!(decision, DeviceState::Approved { .. });
        let decided = self
            .store()
            .run(move |s| s.decide_device_code(hash, decision))
            .await?;
        Ok(Some(
            match (decided, approved) {
                (false, _) => DEVICE_PAGE_EXPIRED,
                (true, true) => DEVICE_PAGE_APPROVED,
                (true, false) => DEVICE_PAGE_DENIED,
            }
            .into(),
        ))
    }
}

/// The token request of the device grant (§3.4) and its answers (§3.5).
pub(super) async fn grant(
    oauth: &OAuth2,
    client: &ClientRecord,
    request: &TokenRequest,
) -> Result<TokenResponse, OAuthError> {
    let device_code = request.required("device_code")?;
    let family_id = opaque::random_token(16);
    let refresh_token = opaque::random_token(32);
    let session = NewSession {
        family_id: family_id.clone(),
        refresh_hash: opaque::digest(&refresh_token),
        lifetimes: oauth.sessions.lifetimes(),
    };
    let (hash, client_id) = (opaque::digest(device_code), client.client_id.clone());
    let poll = oauth
        .store()
        .run(move |s| s.poll_device_code(hash, &client_id, session))
        .await?;
    let (scope, user_id, auth_time, sid, amr) = match poll {
        DevicePoll::Issued {
            scope,
            user_id,
            auth_time,
            sid,
            amr,
        } => (scope, user_id, auth_time, sid, amr),
        DevicePoll::Pending => return Err(OAuthError::AuthorizationPending),
        DevicePoll::SlowDown => return Err(OAuthError::SlowDown),
        DevicePoll::Denied => return Err(OAuthError::AccessDenied),
        DevicePoll::Expired => return Err(OAuthError::ExpiredToken),
        DevicePoll::Invalid => {
            return Err(OAuthError::InvalidGrant(
                "the device code is unknown, used, or another client's".into(),
            ));
        }
    };
    let signed_in = super::SignIn {
        nonce: None,
        auth_time,
        sid: sid.as_deref(),
        amr: &amr,
        // A device approval does not keep the browser's upstream.
        idp: None,
    };
    oauth
        .issue_for_new_session(
            client,
            &user_id,
            &scope,
            (family_id, refresh_token),
            signed_in,
        )
        .await
}
