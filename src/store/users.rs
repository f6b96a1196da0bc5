//! User records and their unique indexes (username, email, API key).

use super::kv::{ReadTransaction, ReadableTable, WriteTransaction};

use super::{Store, StoreError, codec, records::UserRecord, tables};
use crate::domain::username::skeleton_of;

const USER_SEQ_KEY: &str = "user_seq";

/// Everything needed to insert a user; uniqueness is checked in the inserting transaction.
#[derive(Debug, Clone)]
pub struct NewUser {
    /// Chosen by the caller, so secrets bound to the id can be sealed before the insert.
    pub id: String,
    pub username: String,
    pub username_key: String,
    /// UTS #39 skeleton of the username: look-alike names are taken too.
    pub username_skeleton: String,
    pub email: String,
    pub email_key: String,
    pub display_name: Option<String>,
    pub password_hash: String,
    pub email_verified: bool,
    pub roles: Vec<crate::domain::Role>,
    /// A personal API key to issue with the account: its SHA-256 and its sealed form.
    pub api_key: Option<([u8; 32], String)>,
    /// Imported accounts may arrive disabled.
    pub disabled: bool,
    /// When the account was created, if earlier than now (imported accounts); else now.
    pub created_at: Option<i64>,
}

/// Why a user could not be created. Nothing was written, and a code was not spent.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CreateUserError {
    UsernameTaken,
    EmailTaken,
    /// The verification code was used or expired since it was checked.
    CodeGone,
    /// The upstream identity to link was linked to another account meanwhile.
    IdentityTaken,
}

/// What a registration writes with the user, in the same transaction.
#[derive(Debug, Clone, Default)]
pub struct CreateWith {
    /// The checked verification code, spent only if the user is created.
    pub code: Option<super::codes::CodeSpend>,
    /// The first session, started only if the user is created.
    pub session: Option<super::sessions::NewSession>,
    /// An upstream identity to link, only if the user is created (and refusing the whole
    /// creation if it is linked to another account meanwhile).
    pub identity: Option<super::upstreams::IdentityRecord>,
}

/// How a user is looked up at login.
#[derive(Debug, Clone)]
pub enum UserLookup {
    UsernameKey(String),
    EmailKey(String),
}

/// Whether `new`'s username (or a look-alike) or email is taken.
fn taken_in(txn: &WriteTransaction, new: &NewUser) -> Result<Option<CreateUserError>, StoreError> {
    if txn
        .open_table(tables::USERNAMES)?
        .get(new.username_key.as_str())?
        .is_some()
        || txn
            .open_table(tables::USERNAME_SKELETONS)?
            .get(new.username_skeleton.as_str())?
            .is_some()
    {
        return Ok(Some(CreateUserError::UsernameTaken));
    }
    if txn
        .open_table(tables::EMAILS)?
        .get(new.email_key.as_str())?
        .is_some()
    {
        return Ok(Some(CreateUserError::EmailTaken));
    }
    Ok(None)
}

/// Writes a user, numbered next, with its index entries; the caller has checked
/// [`taken_in`] in the same transaction.
fn insert_user_in(
    txn: &WriteTransaction,
    new: NewUser,
    now: i64,
) -> Result<UserRecord, StoreError> {
    let mut meta = txn.open_table(tables::META)?;
    let number = meta.get(USER_SEQ_KEY)?.map(|v| v.value()).unwrap_or(0) + 1;
    meta.insert(USER_SEQ_KEY, number)?;
    let user = UserRecord {
        id: new.id,
        number,
        username: new.username,
        email: new.email,
        display_name: new.display_name,
        password_hash: new.password_hash,
        email_verified: new.email_verified,
        roles: new.roles,
        disabled: new.disabled,
        api_key_hash: new.api_key.as_ref().map(|(hash, _)| *hash),
        api_key_sealed: new.api_key.map(|(_, sealed)| sealed),
        avatar_etag: None,
        created_at: new.created_at.unwrap_or(now),
        updated_at: now,
    };
    if let Some(hash) = user.api_key_hash {
        txn.open_table(tables::API_KEYS)?
            .insert(hash.as_slice(), user.id.as_str())?;
    }
    let id = user.id.as_str();
    txn.open_table(tables::USERNAMES)?
        .insert(new.username_key.as_str(), id)?;
    txn.open_table(tables::USERNAME_SKELETONS)?
        .insert(new.username_skeleton.as_str(), id)?;
    txn.open_table(tables::EMAILS)?
        .insert(new.email_key.as_str(), id)?;
    put_user(txn, &user)?;
    Ok(user)
}

impl Store {
    /// Inserts a user unless the username or email is taken. The check and the insert happen
    /// in one write transaction, and redb serialises writers, so concurrent registrations of
    /// the same name cannot both succeed.
    /// With `with`, the code is spent and the session started in the same transaction, so a
    /// registration is written whole or not at all, and a refused one leaves the code usable.
    /// A batched write (see `Store::write_batched`).
    pub async fn create_user(
        &self,
        new: NewUser,
        with: CreateWith,
    ) -> Result<Result<UserRecord, CreateUserError>, StoreError> {
        let now = self.clock().now();
        self.write_batched(move |txn| {
            if let Some(taken) = taken_in(txn, &new)? {
                return Ok(Err(taken));
            }
            if let Some(code) = &with.code
                && !super::codes::spend_email_code_in(txn, code, now)?
            {
                return Ok(Err(CreateUserError::CodeGone));
            }
            // Checked before anything is written, so a refusal writes nothing.
            if let Some(identity) = &with.identity
                && txn
                    .open_table(tables::FEDERATED_IDENTITIES)?
                    .get((identity.upstream_id.as_str(), identity.subject.as_str()))?
                    .is_some()
            {
                return Ok(Err(CreateUserError::IdentityTaken));
            }
            let user = insert_user_in(txn, new.clone(), now)?;
            if let Some(identity) = &with.identity {
                // A new account has no identities, and the identity was checked free above.
                let _ = super::upstreams::link_in(txn, &user.id, identity)?;
            }
            if let Some(session) = &with.session {
                super::sessions::create_session_in(txn, session, now)?;
            }
            Ok(Ok(user))
        })
        .await
    }

    /// Inserts a batch of users (`portcullis import`) in one transaction, each under the same
    /// uniqueness rules as a registration, also against the batch's earlier rows. A refused
    /// row writes nothing and does not stop the others. Returns each row's outcome, in order.
    pub fn import_users(
        &self,
        batch: Vec<NewUser>,
    ) -> Result<Vec<Result<(), CreateUserError>>, StoreError> {
        let now = self.clock().now();
        self.write(|txn| {
            let mut outcomes = Vec::with_capacity(batch.len());
            for new in batch {
                outcomes.push(match taken_in(txn, &new)? {
                    Some(taken) => Err(taken),
                    None => insert_user_in(txn, new, now).map(|_| Ok(()))?,
                });
            }
            Ok(outcomes)
        })
    }

    pub fn get_user(&self, id: &str) -> Result<Option<UserRecord>, StoreError> {
        self.read(|txn| get_user_in(txn, id))
    }

    pub fn find_user(&self, lookup: &UserLookup) -> Result<Option<UserRecord>, StoreError> {
        self.read(|txn| {
            let id = match lookup {
                UserLookup::UsernameKey(k) => txn
                    .open_table(tables::USERNAMES)?
                    .get(k.as_str())?
                    .map(|v| v.value().to_string()),
                UserLookup::EmailKey(k) => txn
                    .open_table(tables::EMAILS)?
                    .get(k.as_str())?
                    .map(|v| v.value().to_string()),
            };
            match id {
                Some(id) => get_user_in(txn, &id),
                None => Ok(None),
            }
        })
    }

    /// Deletes a user and everything that is theirs, in one transaction: the record, its
    /// username and email entries (`username_key`, `email_key`), API key, avatar, sessions,
    /// consents and the OAuth clients they own. `None` if there is no such user.
    pub fn delete_user(
        &self,
        id: &str,
        username_key: &str,
        email_key: &str,
    ) -> Result<Option<UserRecord>, StoreError> {
        self.write(|txn| {
            let Some(user) = get_user_for_update(txn, id)? else {
                return Ok(None);
            };
            txn.open_table(tables::USERS)?.remove(id)?;
            let skeleton = skeleton_of(&user.username);
            for (def, key) in [
                (tables::USERNAMES, username_key),
                (tables::USERNAME_SKELETONS, skeleton.as_str()),
                (tables::EMAILS, email_key),
            ] {
                let mut index = txn.open_table(def)?;
                // Only this user's entry: never another account's.
                let ours = index.get(key)?.is_some_and(|v| v.value() == id);
                if ours {
                    index.remove(key)?;
                }
            }
            if let Some(hash) = user.api_key_hash {
                txn.open_table(tables::API_KEYS)?.remove(hash.as_slice())?;
            }
            txn.open_table(tables::AVATARS)?.remove(id)?;
            txn.open_table(tables::MFA_FACTORS)?.remove(id)?;
            super::upstreams::unlink_all_in(txn, id)?;
            let families = {
                let index = txn.open_table(tables::USER_SESSIONS)?;
                super::sessions::families_of(&index, id)?
            };
            for fid in &families {
                super::sessions::revoke_family_in(txn, fid)?;
                txn.open_table(tables::USER_SESSIONS)?
                    .remove((id, fid.as_bytes()))?;
            }
            super::authz::end_browser_sessions_in(txn, id, self.clock().now(), None)?;
            let consented = super::keys_under(&txn.open_table(tables::CONSENTS)?, id)?;
            for client in consented {
                txn.open_table(tables::CONSENTS)?
                    .remove((id, client.as_str()))?;
            }
            let owned = super::keys_under(&txn.open_table(tables::CLIENTS_BY_OWNER)?, id)?;
            for client in owned {
                txn.open_table(tables::CLIENTS)?.remove(client.as_str())?;
                txn.open_table(tables::CLIENTS_BY_OWNER)?
                    .remove((id, client.as_str()))?;
            }
            Ok(Some(user))
        })
    }

    /// Whether a case-folded username, or one that looks like it (same `skeleton`), belongs
    /// to an account.
    pub fn username_taken(&self, key: &str, skeleton: &str) -> Result<bool, StoreError> {
        self.read(|txn| {
            Ok(txn.open_table(tables::USERNAMES)?.get(key)?.is_some()
                || txn
                    .open_table(tables::USERNAME_SKELETONS)?
                    .get(skeleton)?
                    .is_some())
        })
    }

    /// Applies `change` to a user and stores the result; `None` if there is no such user.
    pub fn update_user(
        &self,
        id: &str,
        change: impl FnOnce(&mut UserRecord),
    ) -> Result<Option<UserRecord>, StoreError> {
        let now = self.clock().now();
        self.write(|txn| {
            let Some(mut user) = get_user_for_update(txn, id)? else {
                return Ok(None);
            };
            change(&mut user);
            user.updated_at = now;
            put_user(txn, &user)?;
            Ok(Some(user))
        })
    }

    /// A password reset by emailed code, in one transaction: spends the code, sets the new
    /// hash and revokes every session of the user. `None` (nothing written) when the code went
    /// meanwhile or the user no longer exists.
    pub fn reset_password_with_code(
        &self,
        id: &str,
        code: &super::codes::CodeSpend,
        password_hash: String,
    ) -> Result<Option<UserRecord>, StoreError> {
        let now = self.clock().now();
        self.write(|txn| {
            let Some(mut user) = get_user_for_update(txn, id)? else {
                return Ok(None);
            };
            if !super::codes::spend_email_code_in(txn, code, now)? {
                return Ok(None);
            }
            user.password_hash = password_hash;
            user.updated_at = now;
            put_user(txn, &user)?;
            super::sessions::revoke_user_sessions_in(
                txn,
                id,
                &super::sessions::KeepSession::None,
                now,
            )?;
            Ok(Some(user))
        })
    }

    /// Moves a user to a new email address proven by `code`, in one transaction: the code is
    /// spent, the old address's index entry goes, the new one is taken (or `Err(())` when
    /// another account holds it), and the address is marked verified. `Ok(None)`: no such
    /// user, or the code was spent meanwhile.
    pub fn change_email_with_code(
        &self,
        id: &str,
        code: &super::codes::CodeSpend,
        new_email: &str,
        new_key: &str,
        old_key: &str,
    ) -> Result<Result<Option<UserRecord>, ()>, StoreError> {
        let now = self.clock().now();
        self.write(|txn| {
            let Some(mut user) = get_user_for_update(txn, id)? else {
                return Ok(Ok(None));
            };
            let emails = txn.open_table(tables::EMAILS)?;
            if emails
                .get(new_key)?
                .is_some_and(|holder| holder.value() != id)
            {
                return Ok(Err(()));
            }
            drop(emails);
            if !super::codes::spend_email_code_in(txn, code, now)? {
                return Ok(Ok(None));
            }
            let mut emails = txn.open_table(tables::EMAILS)?;
            emails.remove(old_key)?;
            emails.insert(new_key, id)?;
            drop(emails);
            user.email = new_email.to_string();
            user.email_verified = true;
            user.updated_at = now;
            put_user(txn, &user)?;
            Ok(Ok(Some(user)))
        })
    }

    /// Replaces a user's API key: the old key's hash is removed in the same transaction, so it
    /// stops working the moment the new one exists.
    pub fn replace_api_key(
        &self,
        user_id: &str,
        new_hash: [u8; 32],
        sealed: Option<String>,
    ) -> Result<Option<UserRecord>, StoreError> {
        let now = self.clock().now();
        self.write(|txn| {
            let Some(mut user) = get_user_for_update(txn, user_id)? else {
                return Ok(None);
            };
            let mut keys = txn.open_table(tables::API_KEYS)?;
            if let Some(old) = user.api_key_hash {
                keys.remove(old.as_slice())?;
            }
            keys.insert(new_hash.as_slice(), user.id.as_str())?;
            user.api_key_hash = Some(new_hash);
            user.api_key_sealed = sealed;
            user.updated_at = now;
            put_user(txn, &user)?;
            Ok(Some(user))
        })
    }

    pub fn user_by_api_key(&self, hash: &[u8; 32]) -> Result<Option<UserRecord>, StoreError> {
        self.read(|txn| {
            let id = txn
                .open_table(tables::API_KEYS)?
                .get(hash.as_slice())?
                .map(|v| v.value().to_string());
            match id {
                Some(id) => get_user_in(txn, &id),
                None => Ok(None),
            }
        })
    }

    /// All users, in id order (used by the CLI).
    /// Whether any account has the admin role (stops at the first one).
    pub fn has_admin(&self) -> Result<bool, StoreError> {
        self.read(|txn| {
            for row in txn.open_table(tables::USERS)?.iter()? {
                let (_, v) = row?;
                let user: UserRecord = codec::decode("users", v.value())?;
                if user.roles.contains(&crate::domain::Role::Admin) {
                    return Ok(true);
                }
            }
            Ok(false)
        })
    }

    pub fn list_users(&self) -> Result<Vec<UserRecord>, StoreError> {
        self.read(|txn| {
            let table = txn.open_table(tables::USERS)?;
            let mut out = Vec::new();
            for row in table.iter()? {
                let (_, v) = row?;
                out.push(codec::decode("users", v.value())?);
            }
            out.sort_by_key(|u: &UserRecord| u.number);
            Ok(out)
        })
    }
}

fn get_user_in(txn: &ReadTransaction, id: &str) -> Result<Option<UserRecord>, StoreError> {
    user_from(&txn.open_table(tables::USERS)?, id)
}

/// Reads a user inside a write transaction.
pub(crate) fn get_user_for_update(
    txn: &WriteTransaction,
    id: &str,
) -> Result<Option<UserRecord>, StoreError> {
    user_from(&txn.open_table(tables::USERS)?, id)
}

/// Reads and decodes a user from the users table of any transaction.
pub(crate) fn user_from(
    table: &impl ReadableTable<&'static str, &'static [u8]>,
    id: &str,
) -> Result<Option<UserRecord>, StoreError> {
    match table.get(id)? {
        Some(v) => Ok(Some(codec::decode("users", v.value())?)),
        None => Ok(None),
    }
}

pub(crate) fn put_user(txn: &WriteTransaction, user: &UserRecord) -> Result<(), StoreError> {
    let bytes = codec::encode(user)?;
    txn.open_table(tables::USERS)?
        .insert(user.id.as_str(), bytes.as_slice())?;
    Ok(())
}
