//! Avatar images (already validated and re-encoded as PNG by the service).

use super::{Store, StoreError, records::UserRecord, tables, users::get_user_for_update};

impl Store {
    /// Stores `png` as the user's avatar, replacing the old bytes in the same transaction.
    pub fn set_avatar(
        &self,
        user_id: &str,
        etag: &str,
        png: &[u8],
    ) -> Result<Option<UserRecord>, StoreError> {
        let now = self.clock().now();
        self.write(|txn| {
            let Some(mut user) = get_user_for_update(txn, user_id)? else {
                return Ok(None);
            };
            txn.open_table(tables::AVATARS)?.insert(user_id, png)?;
            user.avatar_etag = Some(etag.to_string());
            user.updated_at = now;
            super::users::put_user(txn, &user)?;
            Ok(Some(user))
        })
    }

    /// Deletes the user's avatar bytes; returns the updated user (`None` if no such user).
    pub fn delete_avatar(&self, user_id: &str) -> Result<Option<UserRecord>, StoreError> {
        let now = self.clock().now();
        self.write(|txn| {
            let Some(mut user) = get_user_for_update(txn, user_id)? else {
                return Ok(None);
            };
            txn.open_table(tables::AVATARS)?.remove(user_id)?;
            user.avatar_etag = None;
            user.updated_at = now;
            super::users::put_user(txn, &user)?;
            Ok(Some(user))
        })
    }

    /// The avatar's ETag and PNG bytes.
    pub fn get_avatar(&self, user_id: &str) -> Result<Option<(String, Vec<u8>)>, StoreError> {
        self.read(|txn| {
            let Some(user) = super::users::user_from(&txn.open_table(tables::USERS)?, user_id)?
            else {
                return Ok(None);
            };
            let (Some(etag), Some(bytes)) = (
                user.avatar_etag,
                txn.open_table(tables::AVATARS)?
                    .get(user_id)?
                    .map(|v| v.value().to_vec()),
            ) else {
                return Ok(None);
            };
            Ok(Some((etag, bytes)))
        })
    }
}
