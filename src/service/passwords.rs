//! Password hashing with scrypt (PHC strings).
//!
//! Hashing is deliberately slow, so it runs on the blocking pool behind a semaphore sized to
//! the core count: a login flood queues here instead of starving every other request.
//! Unknown accounts are verified against a dummy hash with the same cost, so response time
//! does not reveal whether an account exists.

use std::sync::Arc;

use rand::RngCore;
use scrypt::{
    Params, Scrypt,
    password_hash::{PasswordHash, PasswordHasher as _, PasswordVerifier as _, SaltString},
};
use tokio::sync::{OnceCell, Semaphore};

use super::{Result, ServiceError};
use crate::domain::Password;

/// scrypt cost parameters. The default is OWASP's recommendation (N=2^17, r=8, p=1).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ScryptCost {
    pub log_n: u8,
    pub r: u32,
    pub p: u32,
}

impl Default for ScryptCost {
    fn default() -> Self {
        Self {
            log_n: 17,
            r: 8,
            p: 1,
        }
    }
}

pub struct PasswordHasher {
    cost: ScryptCost,
    params: Params,
    permits: Arc<Semaphore>,
    dummy: OnceCell<String>,
}

impl PasswordHasher {
    pub fn new(cost: ScryptCost) -> Result<Self, String> {
        let params = Params::new(cost.log_n, cost.r, cost.p, Params::RECOMMENDED_LEN)
            .map_err(|e| e.to_string())?;
        let cores = std::thread::available_parallelism().map_or(2, |n| n.get());
        Ok(Self {
            cost,
            params,
            permits: Arc::new(Semaphore::new(cores)),
            dummy: OnceCell::new(),
        })
    }

    /// Hashes a password into a PHC string with a fresh 128-bit salt.
    pub async fn hash(&self, password: &Password) -> Result<String> {
        let pw = password.expose().to_string();
        let params = self.params;
        self.blocking(move || hash_with(&pw, params)).await?
    }

    /// Checks `password` against `phc`; with no hash (unknown account) it spends the same
    /// time on a dummy hash and returns `false`.
    pub async fn verify(&self, phc: Option<&str>, password: &str) -> Result<bool> {
        let (target, real) = match phc {
            Some(h) => (h.to_string(), true),
            None => (self.dummy_hash().await?.to_string(), false),
        };
        let pw = password.to_string();
        let ok = self
            .blocking(move || match PasswordHash::new(&target) {
                Ok(parsed) => Scrypt.verify_password(pw.as_bytes(), &parsed).is_ok(),
                Err(_) => false,
            })
            .await?;
        Ok(ok && real)
    }

    /// Whether `phc` was made with other parameters than the configured ones (rehash on login).
    pub fn needs_rehash(&self, phc: &str) -> bool {
        let Ok(parsed) = PasswordHash::new(phc) else {
            return true;
        };
        match Params::try_from(&parsed) {
            Ok(p) => p.log_n() != self.cost.log_n || p.r() != self.cost.r || p.p() != self.cost.p,
            Err(_) => true,
        }
    }

    /// Computes the dummy hash now, so the first unknown-account login is not slower.
    pub async fn warm_up(&self) {
        let _ = self.dummy_hash().await;
    }

    async fn dummy_hash(&self) -> Result<&String> {
        let params = self.params;
        self.dummy
            .get_or_try_init(|| async move {
                self.blocking(move || hash_with("portcullis-dummy-password", params))
                    .await?
            })
            .await
    }

    async fn blocking<T: Send + 'static>(
        &self,
        f: impl FnOnce() -> T + Send + 'static,
    ) -> Result<T> {
        let _permit = self
            .permits
            .acquire()
            .await
            .map_err(|_| ServiceError::Internal("password hasher closed".into()))?;
        tokio::task::spawn_blocking(f)
            .await
            .map_err(|e| ServiceError::Internal(format!("hashing task failed: {e}")))
    }
}

fn hash_with(password: &str, params: Params) -> Result<String> {
    let mut salt = [0u8; 16];
    rand::rng().fill_bytes(&mut salt);
    let salt = SaltString::encode_b64(&salt)
        .map_err(|e| ServiceError::Internal(format!("salt encoding failed: {e}")))?;
    Scrypt
        .hash_password_customized(password.as_bytes(), None, None, params, &salt)
        .map(|h| h.to_string())
        .map_err(|e| ServiceError::Internal(format!("hashing failed: {e}")))
}

#[cfg(test)]
mod tests {
    use super::*;

    const CHEAP: ScryptCost = ScryptCost {
        log_n: 4,
        r: 8,
        p: 1,
    };

    #[tokio::test]
    async fn hash_verifies_and_wrong_password_does_not() {
        let h = PasswordHasher::new(CHEAP).unwrap();
        let pw = Password::parse("Tr0ub4dor&3-lilac").unwrap();
        let phc = h.hash(&pw).await.unwrap();
        assert!(phc.starts_with("$scrypt$ln=4,r=8,p=1$"), "{phc}");
        assert!(h.verify(Some(&phc), "Tr0ub4dor&3-lilac").await.unwrap());
        assert!(!h.verify(Some(&phc), "Tr0ub4dor&3-lilaC").await.unwrap());
        assert!(!h.verify(None, "Tr0ub4dor&3-lilac").await.unwrap());
        assert!(!h.verify(Some("garbage"), "x").await.unwrap());
    }

    #[tokio::test]
    async fn changed_cost_asks_for_rehash() {
        let old = PasswordHasher::new(CHEAP).unwrap();
        let phc = old
            .hash(&Password::parse("Tr0ub4dor&3-lilac").unwrap())
            .await
            .unwrap();
        assert!(!old.needs_rehash(&phc));
        let new = PasswordHasher::new(ScryptCost { log_n: 5, ..CHEAP }).unwrap();
        assert!(new.needs_rehash(&phc));
    }
}
