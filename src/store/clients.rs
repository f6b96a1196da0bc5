//! OAuth client records.

use super::kv::{ReadTransaction, ReadableTable, WriteTransaction};

use super::{Store, StoreError, codec, records::ClientRecord, tables};

impl Store {
    /// Inserts a client unless its id is taken (`Ok(false)`), checked in the same transaction.
    pub fn create_client(&self, client: &ClientRecord) -> Result<bool, StoreError> {
        self.write(|txn| insert_client_in(txn, client))
    }

    /// Inserts `client` and gives its owner `role`, in one transaction: both or neither.
    pub fn create_client_granting_role(
        &self,
        client: &ClientRecord,
        role: crate::domain::Role,
    ) -> Result<CreateClientOutcome, StoreError> {
        let now = self.clock().now();
        self.write(|txn| {
            let Some(mut owner) = super::users::get_user_for_update(txn, &client.owner_id)? else {
                return Ok(CreateClientOutcome::NoOwner);
            };
            // The client first: if its id is taken, returning drops nothing written.
            if !insert_client_in(txn, client)? {
                return Ok(CreateClientOutcome::IdTaken);
            }
            if owner.add_role(role) {
                owner.updated_at = now;
                super::users::put_user(txn, &owner)?;
            }
            Ok(CreateClientOutcome::Created(Box::new(owner)))
        })
    }

    /// Inserts a built-in client, or refreshes its redirect URIs and scopes (the public URL
    /// may have changed since the last start). Bypasses validation: it is ours.
    pub fn upsert_builtin_client(&self, client: ClientRecord) -> Result<ClientRecord, StoreError> {
        self.write(|txn| {
            let mut clients = txn.open_table(tables::CLIENTS)?;
            let existing = client_from(&clients, &client.client_id)?;
            let record = match existing {
                Some(mut old) => {
                    old.redirect_uris = client.redirect_uris;
                    old.scopes = client.scopes;
                    old.grant_types = client.grant_types;
                    old
                }
                None => client,
            };
            let bytes = codec::encode(&record)?;
            clients.insert(record.client_id.as_str(), bytes.as_slice())?;
            Ok(record)
        })
    }

    pub fn get_client(&self, client_id: &str) -> Result<Option<ClientRecord>, StoreError> {
        self.read(|txn| get_in(txn, client_id))
    }

    /// A user's clients, by client id.
    pub fn clients_of(&self, owner_id: &str) -> Result<Vec<ClientRecord>, StoreError> {
        self.read(|txn| {
            let ids = super::keys_under(&txn.open_table(tables::CLIENTS_BY_OWNER)?, owner_id)?;
            let mut out = Vec::new();
            for id in ids {
                if let Some(c) = get_in(txn, &id)? {
                    out.push(c);
                }
            }
            Ok(out)
        })
    }

    /// Every client (CLI).
    pub fn all_clients(&self) -> Result<Vec<ClientRecord>, StoreError> {
        self.read(|txn| {
            let mut out = Vec::new();
            for row in txn.open_table(tables::CLIENTS)?.iter()? {
                let (_, v) = row?;
                out.push(codec::decode("clients", v.value())?);
            }
            Ok(out)
        })
    }

    /// Applies `change` to a client; `None` if there is no such client.
    pub fn update_client(
        &self,
        client_id: &str,
        change: impl FnOnce(&mut ClientRecord),
    ) -> Result<Option<ClientRecord>, StoreError> {
        let now = self.clock().now();
        self.write(|txn| {
            let Some(mut client) = get_for_update(txn, client_id)? else {
                return Ok(None);
            };
            change(&mut client);
            client.updated_at = now;
            let bytes = codec::encode(&client)?;
            txn.open_table(tables::CLIENTS)?
                .insert(client_id, bytes.as_slice())?;
            Ok(Some(client))
        })
    }

    /// Deletes a client; returns whether it existed.
    pub fn delete_client(&self, client_id: &str) -> Result<bool, StoreError> {
        self.write(|txn| {
            let Some(client) = get_for_update(txn, client_id)? else {
                return Ok(false);
            };
            txn.open_table(tables::CLIENTS)?.remove(client_id)?;
            txn.open_table(tables::CLIENTS_BY_OWNER)?
                .remove((client.owner_id.as_str(), client_id))?;
            Ok(true)
        })
    }
}

fn get_in(txn: &ReadTransaction, id: &str) -> Result<Option<ClientRecord>, StoreError> {
    client_from(&txn.open_table(tables::CLIENTS)?, id)
}

fn get_for_update(txn: &WriteTransaction, id: &str) -> Result<Option<ClientRecord>, StoreError> {
    client_from(&txn.open_table(tables::CLIENTS)?, id)
}

fn client_from(
    table: &impl ReadableTable<&'static str, &'static [u8]>,
    id: &str,
) -> Result<Option<ClientRecord>, StoreError> {
    match table.get(id)? {
        Some(v) => Ok(Some(codec::decode("clients", v.value())?)),
        None => Ok(None),
    }
}

/// Inserts a client and its owner index entry in `txn`; false (nothing written) if its id
/// is taken.
pub(super) fn insert_client_in(
    txn: &super::kv::WriteTransaction,
    client: &ClientRecord,
) -> Result<bool, StoreError> {
    let mut clients = txn.open_table(tables::CLIENTS)?;
    if clients.get(client.client_id.as_str())?.is_some() {
        return Ok(false);
    }
    let bytes = codec::encode(client)?;
    clients.insert(client.client_id.as_str(), bytes.as_slice())?;
    txn.open_table(tables::CLIENTS_BY_OWNER)?
        .insert((client.owner_id.as_str(), client.client_id.as_str()), ())?;
    Ok(true)
}

/// What [`Store::create_client_granting_role`] did.
#[derive(Debug)]
pub enum CreateClientOutcome {
    /// Written; the owner as it is now.
    Created(Box<super::records::UserRecord>),
    IdTaken,
    NoOwner,
}
