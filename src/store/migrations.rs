//! Schema migrations, one `migrate_to_vN` per version, run in order inside the transaction
//! that opens the file: a file is either fully migrated or left as it was.

use super::kv::WriteTransaction;

use super::{StoreError, tables};
use crate::domain::username::skeleton_of;

/// Brings a file at version `from` up to [`super::SCHEMA_VERSION`].
pub(super) fn run(txn: &WriteTransaction, from: u64) -> Result<(), StoreError> {
    if from < 2 {
        migrate_to_v2(txn)?;
    }
    if from < 3 {
        migrate_to_v3(txn)?;
    }
    if from < 4 {
        migrate_to_v4(txn)?;
    }
    if from < 5 {
        migrate_to_v5(txn)?;
    }
    if from < 6 {
        migrate_to_v6(txn)?;
    }
    if from < super::SCHEMA_VERSION {
        tracing::info!(from, to = super::SCHEMA_VERSION, "database schema migrated");
    }
    Ok(())
}

/// v6: failed sign-ins counted in the database (`login_failures`), so that the nodes sharing a
/// PostgreSQL database throttle together (a redb file's single process keeps counting in
/// memory). A new table only; the version moves so that an older binary refuses the database
/// instead of throttling on its own.
fn migrate_to_v6(txn: &WriteTransaction) -> Result<(), StoreError> {
    txn.create_table(tables::LOGIN_FAILURES)
}

/// v5: upstream identity providers and the identities linked to accounts. New tables only;
/// the version moves so that an older binary, which knows nothing of accounts without a
/// password that sign in elsewhere, refuses the file.
fn migrate_to_v5(txn: &WriteTransaction) -> Result<(), StoreError> {
    txn.create_table(tables::UPSTREAMS)?;
    txn.create_table(tables::FEDERATED_IDENTITIES)?;
    txn.create_table(tables::USER_IDENTITIES)?;
    Ok(())
}

/// v4: second factors, their challenges and the audit trail. New tables only, created empty
/// here; the version moves so that an older binary, which would sign users in without their
/// second factor, refuses the file instead.
fn migrate_to_v4(txn: &WriteTransaction) -> Result<(), StoreError> {
    txn.create_table(tables::MFA_FACTORS)?;
    txn.create_table(tables::MFA_CHALLENGES)?;
    txn.create_table(tables::EVENTS)?;
    txn.create_table(tables::USER_EVENTS)?;
    Ok(())
}

/// v3: the `user_browser_sessions` index, so ending every session of a user (password reset,
/// disabling, deletion) finds their browser sessions too. Built from the live records.
fn migrate_to_v3(txn: &WriteTransaction) -> Result<(), StoreError> {
    let mut entries: Vec<(String, Vec<u8>)> = Vec::new();
    for row in txn.open_table(tables::BROWSER_SESSIONS)?.iter()? {
        let (hash, v) = row?;
        let session: super::authz::BrowserSessionRecord =
            super::codec::decode("browser_sessions", v.value())?;
        entries.push((session.user_id, hash.value().to_vec()));
    }
    let mut index = txn.open_table(tables::USER_BROWSER_SESSIONS)?;
    for (user_id, hash) in &entries {
        index.insert((user_id.as_str(), hash.as_slice()), ())?;
    }
    Ok(())
}

/// v2: the `username_skeletons` index (UTS #39 confusable skeletons). Accounts that already
/// look alike keep working; the first by account number holds the skeleton, and the others
/// are named in the log so an operator can rename them.
fn migrate_to_v2(txn: &WriteTransaction) -> Result<(), StoreError> {
    let mut names: Vec<(u64, String, String)> = Vec::new();
    for row in txn.open_table(tables::USERS)?.iter()? {
        let (id, v) = row?;
        let user: super::records::UserRecord = super::codec::decode("users", v.value())?;
        names.push((user.number, user.username, id.value().to_string()));
    }
    names.sort();
    let mut skeletons = txn.open_table(tables::USERNAME_SKELETONS)?;
    for (_, key, id) in names {
        let skeleton = skeleton_of(&key);
        let holder = skeletons
            .get(skeleton.as_str())?
            .map(|v| v.value().to_string());
        match holder {
            None => {
                skeletons.insert(skeleton.as_str(), id.as_str())?;
            }
            Some(first) if first != id => tracing::warn!(
                username = %key,
                user_id = %id,
                looks_like_user = %first,
                "this username looks like an older account's; it keeps working, but consider renaming it"
            ),
            Some(_) => {}
        }
    }
    Ok(())
}
