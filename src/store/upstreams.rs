//! Upstream identity providers (OpenID Connect or plain OAuth 2.0) and the identities at
//! them that are linked to our accounts.

use super::kv::WriteTransaction;
use serde::{Deserialize, Serialize};

use super::{Store, StoreError, codec, tables};

/// Whether the upstream speaks OpenID Connect (discovery, id_token) or only OAuth 2.0 with a
/// userinfo endpoint.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum UpstreamProtocol {
    Oidc,
    Oauth2,
}

/// What a first sign-in through the upstream may do when no account is linked yet.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum AccountPolicy {
    /// Only link to an existing account, whose owner proves control of it.
    LinkOnly,
    /// Create an account just in time.
    Create,
    /// Create one only while the server's registration is open.
    CreateIfRegistrationOpen,
}

/// Which claims (OIDC) or userinfo fields (OAuth 2.0) hold the user's details. Dotted paths
/// are not supported: each names a top-level member.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ClaimMapping {
    pub subject: String,
    pub username: String,
    pub email: String,
    /// A boolean member saying the email was verified; empty: the upstream never verifies.
    #[serde(default)]
    pub email_verified: String,
    pub name: String,
    pub picture: String,
}

impl ClaimMapping {
    /// The OpenID Connect standard claims (OIDC Core §5.1).
    pub fn oidc() -> Self {
        Self {
            subject: "sub".into(),
            username: "preferred_username".into(),
            email: "email".into(),
            email_verified: "email_verified".into(),
            name: "name".into(),
            picture: "picture".into(),
        }
    }
}

/// A configured upstream provider.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct UpstreamRecord {
    /// Lower-case letters, digits and `-`: part of the callback URL.
    pub id: String,
    /// Shown on the button: "Sign in with {name}".
    pub name: String,
    pub protocol: UpstreamProtocol,
    /// OIDC: the issuer, whose discovery document gives the endpoints.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub issuer: Option<String>,
    /// OAuth 2.0 (or overriding discovery): the endpoints.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub authorization_endpoint: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub token_endpoint: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub userinfo_endpoint: Option<String>,
    pub client_id: String,
    /// The client secret, sealed (`token::sealed`): never stored or logged in the clear.
    pub client_secret_sealed: String,
    pub scope: String,
    pub claims: ClaimMapping,
    pub accounts: AccountPolicy,
    /// The upstream's own second factors count here: an `amr`/`acr` saying so satisfies our
    /// second-factor policy.
    #[serde(default)]
    pub trust_mfa: bool,
    /// Trust the upstream's `email_verified` to mark a new account's address as verified.
    /// (Never enough to link to an existing account: that takes the owner's proof.)
    #[serde(default)]
    pub trust_email: bool,
    pub enabled: bool,
    pub created_at: i64,
    pub updated_at: i64,
}

/// One identity at an upstream linked to an account.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct IdentityRecord {
    pub upstream_id: String,
    /// The upstream's stable identifier of the person (`sub`, or the mapped field).
    pub subject: String,
    /// What the upstream called them when linked, for the account page.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub display: Option<String>,
    pub linked_at: i64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_used_at: Option<i64>,
}

/// Why a link was not written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LinkRefused {
    /// The upstream identity belongs to another account.
    IdentityTaken,
    /// The account already has an identity at this upstream.
    AlreadyLinked,
    /// The account is gone.
    NoUser,
}

/// Writes the link in both directions, refusing a duplicate either way.
pub(super) fn link_in(
    txn: &WriteTransaction,
    user_id: &str,
    identity: &IdentityRecord,
) -> Result<Result<(), LinkRefused>, StoreError> {
    let key = (identity.upstream_id.as_str(), identity.subject.as_str());
    let mut by_identity = txn.open_table(tables::FEDERATED_IDENTITIES)?;
    if by_identity.get(key)?.is_some() {
        return Ok(Err(LinkRefused::IdentityTaken));
    }
    let mut by_user = txn.open_table(tables::USER_IDENTITIES)?;
    if by_user
        .get((user_id, identity.upstream_id.as_str()))?
        .is_some()
    {
        return Ok(Err(LinkRefused::AlreadyLinked));
    }
    by_identity.insert(key, user_id)?;
    by_user.insert(
        (user_id, identity.upstream_id.as_str()),
        codec::encode(identity)?.as_slice(),
    )?;
    Ok(Ok(()))
}

/// Removes every identity of a user (the account is being deleted).
pub(super) fn unlink_all_in(txn: &WriteTransaction, user_id: &str) -> Result<(), StoreError> {
    let upstreams = super::keys_under(&txn.open_table(tables::USER_IDENTITIES)?, user_id)?;
    for upstream in upstreams {
        if let Some(identity) = txn
            .open_table(tables::USER_IDENTITIES)?
            .remove((user_id, upstream.as_str()))?
        {
            let identity: IdentityRecord = codec::decode("user_identities", identity.value())?;
            txn.open_table(tables::FEDERATED_IDENTITIES)?
                .remove((upstream.as_str(), identity.subject.as_str()))?;
        }
    }
    Ok(())
}

impl Store {
    /// Adds or replaces an upstream.
    pub fn put_upstream(&self, record: &UpstreamRecord) -> Result<(), StoreError> {
        self.write(|txn| {
            txn.open_table(tables::UPSTREAMS)?
                .insert(record.id.as_str(), codec::encode(record)?.as_slice())?;
            Ok(())
        })
    }

    pub fn get_upstream(&self, id: &str) -> Result<Option<UpstreamRecord>, StoreError> {
        self.read(|txn| {
            txn.open_table(tables::UPSTREAMS)?
                .get(id)?
                .map(|v| codec::decode("upstreams", v.value()))
                .transpose()
        })
    }

    /// Every upstream, by id.
    pub fn list_upstreams(&self) -> Result<Vec<UpstreamRecord>, StoreError> {
        self.read(|txn| {
            let table = txn.open_table(tables::UPSTREAMS)?;
            let mut out = Vec::new();
            for row in table.iter()? {
                let (_, v) = row?;
                out.push(codec::decode("upstreams", v.value())?);
            }
            Ok(out)
        })
    }

    /// Deletes an upstream and every identity linked through it; `false` if there was none.
    pub fn delete_upstream(&self, id: &str) -> Result<bool, StoreError> {
        self.write(|txn| {
            if txn.open_table(tables::UPSTREAMS)?.remove(id)?.is_none() {
                return Ok(false);
            }
            let mut links: Vec<(String, String)> = Vec::new();
            for row in txn
                .open_table(tables::FEDERATED_IDENTITIES)?
                .range((id, "")..)?
            {
                let (k, v) = row?;
                let (upstream, subject) = k.value();
                if upstream != id {
                    break;
                }
                links.push((subject.to_string(), v.value().to_string()));
            }
            for (subject, user_id) in links {
                txn.open_table(tables::FEDERATED_IDENTITIES)?
                    .remove((id, subject.as_str()))?;
                txn.open_table(tables::USER_IDENTITIES)?
                    .remove((user_id.as_str(), id))?;
            }
            Ok(true)
        })
    }

    /// The account an upstream identity is linked to, noting the sign-in.
    pub fn identity_signed_in(
        &self,
        upstream_id: &str,
        subject: &str,
    ) -> Result<Option<String>, StoreError> {
        let now = self.clock().now();
        self.write(|txn| {
            let user_id = txn
                .open_table(tables::FEDERATED_IDENTITIES)?
                .get((upstream_id, subject))?
                .map(|v| v.value().to_string());
            let Some(user_id) = user_id else {
                return Ok(None);
            };
            let mut by_user = txn.open_table(tables::USER_IDENTITIES)?;
            let current = by_user
                .get((user_id.as_str(), upstream_id))?
                .map(|v| codec::decode::<IdentityRecord>("user_identities", v.value()))
                .transpose()?;
            if let Some(mut identity) = current {
                identity.last_used_at = Some(now);
                by_user.insert(
                    (user_id.as_str(), upstream_id),
                    codec::encode(&identity)?.as_slice(),
                )?;
            }
            Ok(Some(user_id))
        })
    }

    /// Links an identity to an existing account.
    pub fn link_identity(
        &self,
        user_id: &str,
        identity: &IdentityRecord,
    ) -> Result<Result<(), LinkRefused>, StoreError> {
        self.write(|txn| {
            if txn.open_table(tables::USERS)?.get(user_id)?.is_none() {
                return Ok(Err(LinkRefused::NoUser));
            }
            link_in(txn, user_id, identity)
        })
    }

    /// A user's linked identities.
    pub fn identities_of(&self, user_id: &str) -> Result<Vec<IdentityRecord>, StoreError> {
        Ok(self
            .identities_of_users(&[user_id.to_string()])?
            .pop()
            .unwrap_or_default())
    }

    /// The linked identities of each of `user_ids` (in their order), in one read.
    pub fn identities_of_users(
        &self,
        user_ids: &[String],
    ) -> Result<Vec<Vec<IdentityRecord>>, StoreError> {
        self.read(|txn| {
            let table = txn.open_table(tables::USER_IDENTITIES)?;
            let mut all = Vec::with_capacity(user_ids.len());
            for user_id in user_ids {
                let mut out = Vec::new();
                for row in table.range((user_id.as_str(), "")..)? {
                    let (k, v) = row?;
                    if k.value().0 != user_id {
                        break;
                    }
                    out.push(codec::decode("user_identities", v.value())?);
                }
                all.push(out);
            }
            Ok(all)
        })
    }

    /// Unlinks a user's identity at `upstream_id`, unless `allowed` (seeing the user's other
    /// ways to sign in, in the same transaction) says no. `Ok(None)`: nothing was linked.
    pub fn unlink_identity(
        &self,
        user_id: &str,
        upstream_id: &str,
        allowed: impl FnOnce(&super::records::UserRecord, usize) -> bool,
    ) -> Result<Option<bool>, StoreError> {
        self.write(|txn| {
            let Some(user) = super::users::get_user_for_update(txn, user_id)? else {
                return Ok(None);
            };
            let identity = txn
                .open_table(tables::USER_IDENTITIES)?
                .get((user_id, upstream_id))?
                .map(|v| codec::decode::<IdentityRecord>("user_identities", v.value()))
                .transpose()?;
            let Some(identity) = identity else {
                return Ok(None);
            };
            let others = super::keys_under(&txn.open_table(tables::USER_IDENTITIES)?, user_id)?
                .len()
                .saturating_sub(1);
            if !allowed(&user, others) {
                return Ok(Some(false));
            }
            txn.open_table(tables::USER_IDENTITIES)?
                .remove((user_id, upstream_id))?;
            txn.open_table(tables::FEDERATED_IDENTITIES)?
                .remove((upstream_id, identity.subject.as_str()))?;
            Ok(Some(true))
        })
    }
}
