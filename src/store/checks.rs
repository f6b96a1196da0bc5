//! What `portcullis check` asserts of each stored value, one function per kind of table; the
//! table registry (`tables::every_table!`) names the function for each table.

use std::collections::HashSet;

use serde::de::DeserializeOwned;

/// What the checks may consult: the ids of every stored user.
#[derive(Debug, Default)]
pub(crate) struct Context {
    pub user_ids: HashSet<String>,
}

/// Anything the table's types accept (redb has already decoded it).
pub(crate) fn any<V>(_: &Context, _: V) -> Result<(), String> {
    Ok(())
}

/// A JSON record that must decode as `T`.
pub(crate) fn json<T: DeserializeOwned>(_: &Context, bytes: &[u8]) -> Result<(), String> {
    serde_json::from_slice::<T>(bytes)
        .map(|_| ())
        .map_err(|e| format!("does not decode: {e}"))
}

/// An index entry whose value is a user id: the user must exist.
pub(crate) fn user_ref(ctx: &Context, id: &str) -> Result<(), String> {
    if ctx.user_ids.contains(id) {
        Ok(())
    } else {
        Err(format!("points at user {id:?}, which does not exist"))
    }
}

/// A stored avatar: PNG bytes (we re-encode every upload to PNG).
pub(crate) fn png(_: &Context, bytes: &[u8]) -> Result<(), String> {
    const SIGNATURE: &[u8] = b"\x89PNG\r\n\x1a\n";
    if bytes.starts_with(SIGNATURE) {
        Ok(())
    } else {
        Err("is not a PNG image".into())
    }
}

/// A generated server secret: 32 bytes.
pub(crate) fn secret(_: &Context, bytes: &[u8]) -> Result<(), String> {
    if bytes.len() == 32 {
        Ok(())
    } else {
        Err(format!("has {} bytes, expected 32", bytes.len()))
    }
}

/// A granted scope: space-separated printable ASCII tokens (RFC 6749 §3.3).
pub(crate) fn scope(_: &Context, scope: &str) -> Result<(), String> {
    crate::domain::Scope::parse(scope)
        .map(|_| ())
        .map_err(|e| format!("is not a valid scope: {e}"))
}

/// A key as a person reads it in a report.
pub(crate) trait ShowKey {
    fn show(&self) -> String;
}

impl ShowKey for &str {
    fn show(&self) -> String {
        format!("{self:?}")
    }
}

impl ShowKey for &[u8] {
    fn show(&self) -> String {
        match std::str::from_utf8(self) {
            Ok(text) if text.chars().all(|c| !c.is_control()) => format!("{text:?}"),
            _ => {
                let hex: String = self.iter().take(16).map(|b| format!("{b:02x}")).collect();
                let more = if self.len() > 16 { "…" } else { "" };
                format!("0x{hex}{more}")
            }
        }
    }
}

impl<A: ShowKey, B: ShowKey> ShowKey for (A, B) {
    fn show(&self) -> String {
        format!("({}, {})", self.0.show(), self.1.show())
    }
}

impl ShowKey for u64 {
    fn show(&self) -> String {
        self.to_string()
    }
}

impl<C: ShowKey> ShowKey for (&str, u64, C) {
    fn show(&self) -> String {
        format!("({}, {}, {})", self.0.show(), self.1, self.2.show())
    }
}

impl<B: ShowKey, C: ShowKey> ShowKey for (u64, B, C) {
    fn show(&self) -> String {
        format!("({}, {}, {})", self.0, self.1.show(), self.2.show())
    }
}
