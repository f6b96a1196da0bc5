//! Dynamic Client Registration (RFC 7591) and its management protocol (RFC 7592).
//!
//! Who may register: a developer, with their own access token (the client is theirs), or
//! the holder of an initial access token an admin issued (the client is the admin's). Each
//! registration returns a registration access token that reads, replaces and deletes that
//! one client, and nothing else.

use subtle::ConstantTimeEq;

use super::audit::{EventKind, Origin};
use super::{
    Principal, Result, ServiceError,
    clients::{Clients, NewClient, require_developer},
    views::ClientView,
};
use crate::{
    domain::{Invalid, Role},
    store::{
        codes::hex,
        records::ClientRecord,
        registration::{InitialAccessTokenRecord, TokenRegistration},
    },
    token::opaque,
};

/// Who is registering a client.
pub enum Registrar {
    /// A developer, authenticated by their access token: the client is theirs.
    Developer(Box<Principal>),
    /// The holder of an initial access token (the raw token).
    InitialAccessToken(String),
}

/// A client just registered, with the credentials shown only now.
pub struct Registered {
    pub client: ClientView,
    pub client_secret: Option<String>,
    pub registration_access_token: String,
}

/// Longest lifetime of an initial access token.
pub const MAX_INITIAL_TOKEN_TTL: i64 = 30 * 86400;

impl Clients {
    /// RFC 7591 §3: registers a client for `registrar`.
    pub async fn register_dynamic(
        &self,
        registrar: Registrar,
        new: NewClient,
        origin: &Origin,
    ) -> Result<Registered> {
        let registration_access_token = opaque::random_token(32);
        let token_hash = hex(&opaque::digest(&registration_access_token));
        match registrar {
            Registrar::Developer(principal) => {
                require_developer(&principal)?;
                let (mut client, secret) = self.build(&principal.user.id, new)?;
                client.registration_token_hash = Some(token_hash);
                let stored = client.clone();
                if !self.store().run(move |s| s.create_client(&stored)).await? {
                    return Err(ServiceError::ClientIdTaken);
                }
                self.registered(client, secret, registration_access_token, origin)
                    .await
            }
            Registrar::InitialAccessToken(token) => {
                let hash = opaque::digest(&token);
                let issued = self
                    .store()
                    .run(move |s| s.initial_access_token(hash))
                    .await?
                    .ok_or(ServiceError::InvalidToken)?;
                let (mut client, secret) = self.build(&issued.created_by, new)?;
                client.registration_token_hash = Some(token_hash);
                let stored = client.clone();
                match self
                    .store()
                    .run(move |s| s.create_client_spending_token(&stored, hash))
                    .await?
                {
                    TokenRegistration::Created => {
                        self.registered(client, secret, registration_access_token, origin)
                            .await
                    }
                    TokenRegistration::IdTaken => Err(ServiceError::ClientIdTaken),
                    TokenRegistration::TokenSpent => Err(ServiceError::InvalidToken),
                }
            }
        }
    }

    async fn registered(
        &self,
        client: ClientRecord,
        client_secret: Option<String>,
        registration_access_token: String,
        origin: &Origin,
    ) -> Result<Registered> {
        self.changed();
        tracing::info!(client_id = %client.client_id, owner = %client.owner_id, "OAuth client registered dynamically");
        let (id, owner) = (&client.client_id, Some(client.owner_id.as_str()));
        self.audit(
            EventKind::ClientCreated,
            owner,
            id,
            origin,
            "dynamic_registration",
        )
        .await;
        Ok(Registered {
            client: client.into(),
            client_secret,
            registration_access_token,
        })
    }

    /// RFC 7592 §2: the client `client_id` if `token` is its registration access token.
    /// Anything else — unknown client, wrong token, a client registered otherwise — is the
    /// same `InvalidToken` (§2: 401), revealing nothing.
    pub async fn registered_client(&self, client_id: &str, token: &str) -> Result<ClientView> {
        Ok(self.registered_record(client_id, token).await?.into())
    }

    /// [`Clients::registered_client`], as stored.
    async fn registered_record(&self, client_id: &str, token: &str) -> Result<ClientRecord> {
        let id = client_id.to_string();
        let client = self
            .store()
            .run(move |s| s.get_client(&id))
            .await?
            .ok_or(ServiceError::InvalidToken)?;
        let given = hex(&opaque::digest(token));
        let matches = client
            .registration_token_hash
            .as_deref()
            .is_some_and(|h| bool::from(h.as_bytes().ct_eq(given.as_bytes())));
        if matches {
            Ok(client)
        } else {
            Err(ServiceError::InvalidToken)
        }
    }

    /// RFC 7592 §2.2: replaces the client's metadata with `new` (fields left out take their
    /// defaults, as in a registration). The authentication method cannot change: a public
    /// client has no secret to move to, and a confidential one would lose its secret.
    pub async fn replace_registered(
        &self,
        client_id: &str,
        token: &str,
        new: NewClient,
        confidential_asked: Option<bool>,
        origin: &Origin,
    ) -> Result<ClientView> {
        let current = self.registered_record(client_id, token).await?;
        if confidential_asked.is_some_and(|c| c != current.confidential) {
            return Err(Invalid::new(
                "invalid_client_metadata",
                "token_endpoint_auth_method",
                "the authentication method of a registered client cannot change",
            )
            .into());
        }
        let (built, _) = self.build(
            &current.owner_id,
            NewClient {
                client_id: Some(current.client_id.clone()),
                confidential: current.confidential,
                ..new
            },
        )?;
        let id = client_id.to_string();
        let updated = self
            .store()
            .run(move |s| {
                s.update_client(&id, |c| {
                    c.name = built.name;
                    c.redirect_uris = built.redirect_uris;
                    c.post_logout_redirect_uris = built.post_logout_redirect_uris;
                    c.allowed_origins = built.allowed_origins;
                    c.grant_types = built.grant_types;
                    c.scopes = built.scopes;
                    c.id_token_alg = built.id_token_alg;
                    c.backchannel_logout_uri = built.backchannel_logout_uri;
                    c.require_pushed_authorization_requests =
                        built.require_pushed_authorization_requests;
                    c.access_token_format = built.access_token_format;
                })
            })
            .await?
            .ok_or(ServiceError::InvalidToken)?;
        self.changed();
        // The registration access token, not a user, authorised this.
        self.audit(
            EventKind::ClientChanged,
            None,
            client_id,
            origin,
            "dynamic_registration",
        )
        .await;
        Ok(updated.into())
    }

    /// RFC 7592 §2.3: deletes the client; its registration access token dies with it.
    pub async fn delete_registered(
        &self,
        client_id: &str,
        token: &str,
        origin: &Origin,
    ) -> Result<()> {
        self.registered_record(client_id, token).await?;
        let id = client_id.to_string();
        self.store().run(move |s| s.delete_client(&id)).await?;
        self.changed();
        tracing::info!(client_id = %client_id, "dynamically registered client deleted");
        self.audit(
            EventKind::ClientDeleted,
            None,
            client_id,
            origin,
            "dynamic_registration",
        )
        .await;
        Ok(())
    }

    /// An admin issues an initial access token (RFC 7591 §3) valid for `ttl` seconds and
    /// `uses` registrations; returns it (shown once) and its expiry.
    pub async fn issue_initial_access_token(
        &self,
        admin: &Principal,
        ttl: i64,
        uses: u32,
    ) -> Result<(String, i64)> {
        if !admin.user.has_role(Role::Admin) {
            return Err(ServiceError::Forbidden(
                "admin_role_required",
                "only admins issue initial access tokens".into(),
            ));
        }
        self.issue_initial_access_token_for(&admin.user.id, ttl, uses)
            .await
    }

    /// [`Clients::issue_initial_access_token`] without the role check (the CLI, which
    /// names the admin).
    pub async fn issue_initial_access_token_for(
        &self,
        admin_id: &str,
        ttl: i64,
        uses: u32,
    ) -> Result<(String, i64)> {
        if !(60..=MAX_INITIAL_TOKEN_TTL).contains(&ttl) || uses == 0 {
            return Err(Invalid::new(
                "invalid_initial_access_token",
                "expires_in",
                format!(
                    "expires_in must be 60 to {MAX_INITIAL_TOKEN_TTL} seconds and uses at least 1"
                ),
            )
            .into());
        }
        let token = opaque::random_token(32);
        let expires_at = self.store().clock().now() + ttl;
        let record = InitialAccessTokenRecord {
            created_by: admin_id.to_string(),
            expires_at,
            uses_left: uses,
        };
        let hash = opaque::digest(&token);
        self.store()
            .run(move |s| s.put_initial_access_token(hash, &record))
            .await?;
        Ok((token, expires_at))
    }
}
