//! Dynamic Client Registration (RFC 7591) state: admin-issued initial access tokens.

use serde::{Deserialize, Serialize};

use super::{
    Store, StoreError, codec,
    expiry::{self, Kind},
    records::ClientRecord,
    tables,
};

/// An initial access token (RFC 7591 §3): lets its holder register clients, owned by the
/// admin who issued it. Stored under its SHA-256.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct InitialAccessTokenRecord {
    /// The admin who issued it: the owner of the clients it registers.
    pub created_by: String,
    pub expires_at: i64,
    /// Registrations it still allows.
    pub uses_left: u32,
}

/// What registering with an initial access token did.
#[derive(Debug, PartialEq, Eq)]
pub enum TokenRegistration {
    Created,
    IdTaken,
    /// The token expired or was used up meanwhile.
    TokenSpent,
}

impl Store {
    pub fn put_initial_access_token(
        &self,
        hash: [u8; 32],
        record: &InitialAccessTokenRecord,
    ) -> Result<(), StoreError> {
        self.write(|txn| {
            expiry::put(
                txn,
                Kind::InitialAccessToken,
                &hash,
                record.expires_at,
                record,
            )
        })
    }

    /// A live initial access token with uses left.
    pub fn initial_access_token(
        &self,
        hash: [u8; 32],
    ) -> Result<Option<InitialAccessTokenRecord>, StoreError> {
        let now = self.clock().now();
        self.read(|txn| {
            Ok(txn
                .open_table(tables::INITIAL_ACCESS_TOKENS)?
                .get(hash.as_slice())?
                .map(|v| {
                    codec::decode::<InitialAccessTokenRecord>("initial_access_tokens", v.value())
                })
                .transpose()?
                .filter(|t| t.expires_at > now && t.uses_left > 0))
        })
    }

    /// Inserts `client` and spends one use of the initial access token `hash`, in one
    /// transaction: a registration never outlives its token's last use.
    pub fn create_client_spending_token(
        &self,
        client: &ClientRecord,
        hash: [u8; 32],
    ) -> Result<TokenRegistration, StoreError> {
        let now = self.clock().now();
        self.write(|txn| {
            let token = txn
                .open_table(tables::INITIAL_ACCESS_TOKENS)?
                .get(hash.as_slice())?
                .map(|v| {
                    codec::decode::<InitialAccessTokenRecord>("initial_access_tokens", v.value())
                })
                .transpose()?
                .filter(|t| t.expires_at > now && t.uses_left > 0);
            let Some(mut token) = token else {
                return Ok(TokenRegistration::TokenSpent);
            };
            if !super::clients::insert_client_in(txn, client)? {
                return Ok(TokenRegistration::IdTaken);
            }
            token.uses_left -= 1;
            if token.uses_left == 0 {
                txn.open_table(tables::INITIAL_ACCESS_TOKENS)?
                    .remove(hash.as_slice())?;
            } else {
                expiry::update(txn, Kind::InitialAccessToken, &hash, &token)?;
            }
            Ok(TokenRegistration::Created)
        })
    }
}
