//! OpenID Connect Back-Channel Logout 1.0. When a browser session ends, each client that was
//! issued a code in it and registered a `backchannel_logout_uri` is sent a logout token
//! (§2.4: a JWT naming the user and the session, `typ: logout+jwt`) by a form POST (§2.5).
//! Whatever ends the session — the logout endpoint, a password reset, an admin — leaves a
//! notice in the store's outbox in the same transaction. Deliveries run in the background — the user's logout page never waits on a relying
//! party — each bounded by a timeout and retried with backoff while the receiver fails in a
//! way that may pass (a network error or a 5xx); a 4xx is final (§2.8: the RP refused it).

use std::{sync::Arc, time::Duration};

use serde_json::json;
use tokio::{
    sync::{Notify, watch},
    task::JoinSet,
};

use crate::{
    service::id_tokens::IdTokenSigner,
    store::{Store, StoreError},
};

/// How long one delivery attempt may take.
pub const DELIVERY_TIMEOUT: Duration = Duration::from_secs(5);
/// Attempts per logout token.
const ATTEMPTS: u32 = 3;
/// The wait before the second attempt; doubled before each further one.
const FIRST_BACKOFF: Duration = Duration::from_secs(1);
/// At shutdown, how long deliveries under way may still take.
const DRAIN: Duration = Duration::from_secs(10);

/// One logout token for one client.
#[derive(Debug)]
pub struct LogoutDelivery {
    pub client_id: String,
    pub uri: String,
    pub logout_token: String,
}

/// How often the outbox is looked at when nothing woke the task (sessions ended by a
/// password reset, an admin, or another path than the logout endpoint).
const OUTBOX_POLL: Duration = Duration::from_secs(1);
/// Notices taken from the outbox at a time.
const OUTBOX_BATCH: usize = 100;

/// Turns the logout notices that ending sessions left in the store's outbox (written in the
/// same transaction) into signed logout tokens. Shared by the server's delivery task and
/// the services that end sessions, which wake it.
pub struct Backchannel {
    store: Store,
    signer: Arc<IdTokenSigner>,
    issuer: String,
    wake: Notify,
}

impl Backchannel {
    pub fn new(store: Store, signer: Arc<IdTokenSigner>, issuer: String) -> Self {
        Self {
            store,
            signer,
            issuer,
            wake: Notify::new(),
        }
    }

    /// A session ended here: look at the outbox now rather than at the next poll.
    pub fn wake(&self) {
        self.wake.notify_one();
    }

    /// The logout tokens owed for the notices in the outbox (taking them).
    async fn take_deliveries(&self) -> Result<Vec<LogoutDelivery>, StoreError> {
        let notices = self
            .store
            .run(|s| s.take_pending_logouts(OUTBOX_BATCH))
            .await?;
        let now = self.store.clock().now();
        let mut out = Vec::new();
        for notice in notices {
            for client_id in &notice.clients {
                let id = client_id.clone();
                let client = match self.store.run(move |s| s.get_client(&id)).await {
                    Ok(Some(c)) => c,
                    Ok(None) => continue,
                    Err(e) => {
                        tracing::warn!(client_id = %client_id, error = %e, "no back-channel logout: the client could not be read");
                        continue;
                    }
                };
                let Some(uri) = client.backchannel_logout_uri.clone() else {
                    continue;
                };
                // §2.4: iss, aud, iat, exp, jti, events, and sub and/or sid; never a nonce.
                let claims = json!({
                    "iss": self.issuer,
                    "aud": client.client_id,
                    "iat": now,
                    "exp": now + 120,
                    "jti": crate::token::opaque::random_token(16),
                    "sub": notice.user_id,
                    "sid": notice.sid,
                    "events": {"http://schemas.openid.net/event/backchannel-logout": {}},
                });
                let alg = client.id_token_alg.as_deref().unwrap_or("RS256");
                match self.signer.sign_typed(alg, "logout+jwt", &claims).await {
                    Ok(logout_token) => out.push(LogoutDelivery {
                        client_id: client.client_id.clone(),
                        uri,
                        logout_token,
                    }),
                    Err(e) => {
                        tracing::warn!(client_id = %client.client_id, error = %e, "could not sign a logout token")
                    }
                }
            }
        }
        Ok(out)
    }
}

/// Delivers logout tokens for ended sessions until `stop`, then gives those under way up to
/// [`DRAIN`] to finish. A notice is taken from the outbox when its tokens are made: a crash
/// while they are being sent loses them (at most once, never twice).
pub async fn run_deliveries(
    backchannel: Arc<Backchannel>,
    client: reqwest::Client,
    mut stop: watch::Receiver<bool>,
) {
    let mut under_way = JoinSet::new();
    let mut poll = tokio::time::interval(OUTBOX_POLL);
    poll.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = poll.tick() => {}
            _ = backchannel.wake.notified() => {}
            _ = stop.changed() => break,
            Some(_) = under_way.join_next(), if !under_way.is_empty() => continue,
        }
        match backchannel.take_deliveries().await {
            Ok(deliveries) => {
                for d in deliveries {
                    under_way.spawn(deliver(client.clone(), d));
                }
            }
            Err(e) => tracing::warn!(error = %e, "the logout outbox could not be read; will retry"),
        }
    }
    let drained = tokio::time::timeout(DRAIN, async {
        while under_way.join_next().await.is_some() {}
    })
    .await;
    if drained.is_err() {
        tracing::warn!(
            left = under_way.len(),
            "back-channel logout deliveries still under way at shutdown were abandoned"
        );
        under_way.abort_all();
    }
}

/// One delivery, with retries.
async fn deliver(client: reqwest::Client, d: LogoutDelivery) {
    let mut backoff = FIRST_BACKOFF;
    for attempt in 1..=ATTEMPTS {
        let answer = client
            .post(&d.uri)
            .header(reqwest::header::CACHE_CONTROL, "no-store")
            .form(&[("logout_token", d.logout_token.as_str())])
            .send()
            .await;
        let why = match answer {
            Ok(resp) if resp.status().is_success() => {
                tracing::info!(client_id = %d.client_id, attempt, "back-channel logout delivered");
                return;
            }
            Ok(resp) if resp.status().is_client_error() => {
                tracing::warn!(client_id = %d.client_id, status = %resp.status(), "back-channel logout refused by the client; not retried");
                return;
            }
            Ok(resp) => format!("answered {}", resp.status()),
            Err(e) if e.is_timeout() => format!("no answer within {DELIVERY_TIMEOUT:?}"),
            Err(e) => format!("could not be reached: {e}"),
        };
        tracing::warn!(client_id = %d.client_id, attempt, reason = %why, "back-channel logout failed");
        if attempt < ATTEMPTS {
            tokio::time::sleep(backoff).await;
            backoff *= 2;
        }
    }
    tracing::warn!(client_id = %d.client_id, "back-channel logout given up after {ATTEMPTS} attempts");
}
