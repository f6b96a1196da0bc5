//! OpenID Connect Back-Channel Logout 1.0. When a browser session ends, each client that was
//! issued a code in it and registered a `backchannel_logout_uri` is sent a logout token
//! (§2.4: a JWT naming the user and the session, `typ: logout+jwt`) by a form POST (§2.5).
//! Deliveries run in the background — the user's logout page never waits on a relying
//! party — each bounded by a timeout and retried with backoff while the receiver fails in a
//! way that may pass (a network error or a 5xx); a 4xx is final (§2.8: the RP refused it).

use std::time::Duration;

use tokio::{
    sync::{Mutex, mpsc, watch},
    task::JoinSet,
};

/// How long one delivery attempt may take.
pub const DELIVERY_TIMEOUT: Duration = Duration::from_secs(5);
/// Attempts per logout token.
const ATTEMPTS: u32 = 3;
/// The wait before the second attempt; doubled before each further one.
const FIRST_BACKOFF: Duration = Duration::from_secs(1);
/// Deliveries waiting to start; beyond this, new ones are dropped (and logged).
const QUEUE: usize = 1024;
/// At shutdown, how long deliveries under way may still take.
const DRAIN: Duration = Duration::from_secs(10);

/// One logout token for one client.
#[derive(Debug)]
pub struct LogoutDelivery {
    pub client_id: String,
    pub uri: String,
    pub logout_token: String,
}

/// The sending side, held by the OAuth service; the receiving side is taken once by the
/// server, which runs [`run_deliveries`].
pub struct LogoutQueue {
    tx: mpsc::Sender<LogoutDelivery>,
    rx: Mutex<Option<mpsc::Receiver<LogoutDelivery>>>,
}

impl Default for LogoutQueue {
    fn default() -> Self {
        let (tx, rx) = mpsc::channel(QUEUE);
        Self {
            tx,
            rx: Mutex::new(Some(rx)),
        }
    }
}

impl LogoutQueue {
    /// Queues a delivery without waiting.
    pub fn push(&self, delivery: LogoutDelivery) {
        let client_id = delivery.client_id.clone();
        if self.tx.try_send(delivery).is_err() {
            tracing::warn!(client_id = %client_id, "back-channel logout queue full; this logout token was not sent");
        }
    }

    /// The receiving side, once (the server's delivery task).
    pub async fn take_receiver(&self) -> Option<mpsc::Receiver<LogoutDelivery>> {
        self.rx.lock().await.take()
    }
}

/// Delivers queued logout tokens until `stop`, then gives those under way (and those
/// already queued) up to [`DRAIN`] to finish.
pub async fn run_deliveries(
    mut rx: mpsc::Receiver<LogoutDelivery>,
    client: reqwest::Client,
    mut stop: watch::Receiver<bool>,
) {
    let mut under_way = JoinSet::new();
    loop {
        tokio::select! {
            next = rx.recv() => match next {
                Some(d) => {
                    under_way.spawn(deliver(client.clone(), d));
                }
                None => break,
            },
            _ = stop.changed() => break,
            Some(_) = under_way.join_next(), if !under_way.is_empty() => {}
        }
    }
    while let Ok(d) = rx.try_recv() {
        under_way.spawn(deliver(client.clone(), d));
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
