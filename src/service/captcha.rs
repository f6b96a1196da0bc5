//! Image captchas: single use, 5 minutes, answers compared ignoring case and stored as HMACs.

use base64::{Engine, engine::general_purpose::STANDARD};
use captcha::{
    Captcha,
    filters::{Noise, Wave},
};
use subtle::ConstantTimeEq;

use super::{Result, ServiceError};
use crate::{
    store::{Store, codes::hex, records::CaptchaRecord},
    token::opaque,
};

/// Seconds a challenge stays answerable.
pub const CAPTCHA_TTL: i64 = 300;

/// A new challenge.
#[derive(Debug, Clone)]
pub struct Challenge {
    pub id: String,
    /// `data:image/png;base64,…`
    pub image: String,
    /// The same image as PNG bytes.
    pub png: Vec<u8>,
    pub expires_in: i64,
    /// The answer; only dev mode may reveal it.
    pub answer: String,
}

#[derive(Clone)]
pub struct Captchas {
    store: Store,
    key: [u8; 32],
}

impl Captchas {
    pub fn new(store: Store, key: [u8; 32]) -> Self {
        Self { store, key }
    }

    /// Renders a challenge (on the blocking pool: it is CPU work) and stores its answer.
    pub async fn create(&self) -> Result<Challenge> {
        let (answer, png) = tokio::task::spawn_blocking(|| {
            let mut c = Captcha::new();
            c.add_chars(5)
                .apply_filter(Noise::new(0.2))
                .apply_filter(Wave::new(2.0, 12.0))
                .view(200, 70);
            (c.chars_as_string(), c.as_png())
        })
        .await
        .map_err(|e| ServiceError::Internal(format!("captcha task failed: {e}")))?;
        let png =
            png.ok_or_else(|| ServiceError::Internal("captcha PNG encoding failed".into()))?;
        let id = opaque::random_token(16);
        let expires_at = self.store.clock().now() + CAPTCHA_TTL;
        let record = CaptchaRecord {
            answer_mac: hex(&self.mac(&id, &answer)),
            expires_at,
        };
        let key = id.clone();
        self.store.run(move |s| s.put_captcha(&key, record)).await?;
        Ok(Challenge {
            id,
            image: format!("data:image/png;base64,{}", STANDARD.encode(&png)),
            png,
            expires_in: CAPTCHA_TTL,
            answer,
        })
    }

    /// Checks an answer. The challenge is consumed whether the answer is right or not.
    pub async fn verify(&self, id: Option<&str>, answer: Option<&str>) -> Result<()> {
        let (Some(id), Some(answer)) = (
            id.filter(|s| !s.is_empty()),
            answer.filter(|s| !s.is_empty()),
        ) else {
            return Err(ServiceError::CaptchaRequired);
        };
        let key = id.to_string();
        let record = self.store.run(move |s| s.take_captcha(&key)).await?;
        let expected = self.mac(id, answer.trim());
        match record {
            Some(r) if bool::from(r.answer_mac.as_bytes().ct_eq(hex(&expected).as_bytes())) => {
                Ok(())
            }
            _ => Err(ServiceError::CaptchaInvalid),
        }
    }

    fn mac(&self, id: &str, answer: &str) -> [u8; 32] {
        crate::token::opaque::keyed_digest(&self.key, &[id, &answer.to_lowercase()])
    }
}
