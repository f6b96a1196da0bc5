//! The audit trail: security events in time order, with an index by the user they concern.
//! Events are appended through the batching writer and removed by age (the retention), so
//! they need no expiry-index entries: the table's own order is the sweep order.

use super::kv::WriteTransaction;
use serde::{Deserialize, Serialize};

use super::{Store, StoreError, codec, tables};

/// One security event.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct EventRecord {
    /// Unix time.
    pub at: i64,
    /// What happened (`login_succeeded`, `totp_enrolled`, …).
    pub kind: String,
    /// Who did it (a user id, `admin:<id>`), when known.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub actor: Option<String>,
    /// The user it concerns, when any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub subject: Option<String>,
    /// The client address.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ip: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user_agent: Option<String>,
    /// Where it happened (`api`, `page`, `oauth2`, `compat-sso`, …).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub surface: Option<String>,
    /// How (`pwd`, `otp`, `hwk`, `recovery_code`, …).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub method: Option<String>,
    /// Anything else worth keeping (a client id, a passkey name).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub detail: Option<String>,
}

/// Which events to list, newest first.
#[derive(Debug, Clone, Default)]
pub struct EventQuery {
    pub subject: Option<String>,
    pub kind: Option<String>,
    /// Only events before this position (the `next` of a previous page).
    pub before: Option<(u64, String)>,
    pub limit: usize,
}

/// Rows a filtered listing looks at before it stops, so a rare kind cannot make one request
/// walk the whole table.
const SCAN_LIMIT: usize = 20_000;

/// Appends `event` under `id` in `txn`.
pub fn append_in(txn: &WriteTransaction, id: &str, event: &EventRecord) -> Result<(), StoreError> {
    let at = event.at.max(0) as u64;
    txn.open_table(tables::EVENTS)?
        .insert((at, id), codec::encode(event)?.as_slice())?;
    if let Some(subject) = &event.subject {
        txn.open_table(tables::USER_EVENTS)?
            .insert((subject.as_str(), at, id), ())?;
    }
    Ok(())
}

impl Store {
    /// Events matching `query`, newest first, with the position of the last one returned
    /// when more may follow.
    #[allow(clippy::type_complexity)]
    pub fn list_events(
        &self,
        query: &EventQuery,
    ) -> Result<(Vec<(String, EventRecord)>, Option<(u64, String)>), StoreError> {
        let limit = query.limit.max(1);
        let (before_at, before_id) = query
            .before
            .clone()
            .unwrap_or((u64::MAX, String::from("\u{10FFFF}")));
        self.read(|txn| {
            let events = txn.open_table(tables::EVENTS)?;
            let mut out = Vec::new();
            let mut scanned = 0;
            let mut last = None;
            let wanted =
                |record: &EventRecord| query.kind.as_ref().is_none_or(|k| *k == record.kind);
            if let Some(subject) = &query.subject {
                let index = txn.open_table(tables::USER_EVENTS)?;
                let range =
                    (subject.as_str(), 0u64, "")..(subject.as_str(), before_at, before_id.as_str());
                for row in index.range(range)?.rev() {
                    let (k, _) = row?;
                    let (_, at, id) = k.value();
                    scanned += 1;
                    last = Some((at, id.to_string()));
                    if let Some(v) = events.get((at, id))? {
                        let record: EventRecord = codec::decode("events", v.value())?;
                        if wanted(&record) {
                            out.push((id.to_string(), record));
                        }
                    }
                    if out.len() == limit || scanned == SCAN_LIMIT {
                        break;
                    }
                }
            } else {
                for row in events.range(..(before_at, before_id.as_str()))?.rev() {
                    let (k, v) = row?;
                    let (at, id) = k.value();
                    scanned += 1;
                    last = Some((at, id.to_string()));
                    let record: EventRecord = codec::decode("events", v.value())?;
                    if wanted(&record) {
                        out.push((id.to_string(), record));
                    }
                    if out.len() == limit || scanned == SCAN_LIMIT {
                        break;
                    }
                }
            }
            let more = out.len() == limit || scanned == SCAN_LIMIT;
            Ok((out, last.filter(|_| more)))
        })
    }

    /// Deletes events older than `cutoff` (Unix time), `batch` per transaction; returns how
    /// many went.
    pub fn sweep_events(&self, cutoff: i64, batch: usize) -> Result<usize, StoreError> {
        let cutoff = cutoff.max(0) as u64;
        let mut deleted = 0;
        loop {
            let due = self.read(|txn| {
                let events = txn.open_table(tables::EVENTS)?;
                Ok(events.first()?.is_some_and(|(k, _)| k.value().0 < cutoff))
            })?;
            if !due {
                return Ok(deleted);
            }
            deleted += self.write(|txn| {
                let mut events = txn.open_table(tables::EVENTS)?;
                let mut gone: Vec<(u64, String, Option<String>)> = Vec::new();
                for row in events.range(..(cutoff, ""))? {
                    let (k, v) = row?;
                    let (at, id) = k.value();
                    let record: EventRecord = codec::decode("events", v.value())?;
                    gone.push((at, id.to_string(), record.subject));
                    if gone.len() == batch.max(1) {
                        break;
                    }
                }
                let mut index = txn.open_table(tables::USER_EVENTS)?;
                for (at, id, subject) in &gone {
                    events.remove((*at, id.as_str()))?;
                    if let Some(s) = subject {
                        index.remove((s.as_str(), *at, id.as_str()))?;
                    }
                }
                Ok(gone.len())
            })?;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::clock::Clock;

    fn event(at: i64, kind: &str, subject: Option<&str>) -> EventRecord {
        EventRecord {
            at,
            kind: kind.into(),
            actor: None,
            subject: subject.map(str::to_string),
            ip: None,
            user_agent: None,
            surface: None,
            method: None,
            detail: None,
        }
    }

    #[test]
    fn events_page_newest_first_filter_by_user_and_kind_and_age_out() {
        for (backend, store) in crate::store::testing::stores(&Clock::manual()) {
            println!("on {backend}");
            store
                .write(|txn| {
                    for i in 0..10 {
                        let subject = if i % 2 == 0 { Some("a") } else { Some("b") };
                        let kind = if i < 5 { "old" } else { "new" };
                        append_in(txn, &format!("e{i}"), &event(100 + i, kind, subject))?;
                    }
                    Ok(())
                })
                .unwrap();
            let q = |subject: Option<&str>, kind: Option<&str>, before, limit| EventQuery {
                subject: subject.map(str::to_string),
                kind: kind.map(str::to_string),
                before,
                limit,
            };
            let (page, next) = store.list_events(&q(None, None, None, 4)).unwrap();
            let ats: Vec<i64> = page.iter().map(|(_, e)| e.at).collect();
            assert_eq!(ats, [109, 108, 107, 106]);
            let (page, _) = store.list_events(&q(None, None, next, 4)).unwrap();
            assert_eq!(
                page.iter().map(|(_, e)| e.at).collect::<Vec<_>>(),
                [105, 104, 103, 102]
            );
            let (page, _) = store.list_events(&q(Some("a"), None, None, 100)).unwrap();
            assert_eq!(
                page.iter().map(|(_, e)| e.at).collect::<Vec<_>>(),
                [108, 106, 104, 102, 100]
            );
            let (page, next) = store
                .list_events(&q(Some("b"), Some("old"), None, 100))
                .unwrap();
            assert_eq!(
                page.iter().map(|(_, e)| e.at).collect::<Vec<_>>(),
                [103, 101]
            );
            assert_eq!(next, None);

            assert_eq!(store.sweep_events(105, 2).unwrap(), 5);
            let (page, _) = store.list_events(&q(None, None, None, 100)).unwrap();
            assert_eq!(page.len(), 5);
            let (page, _) = store.list_events(&q(Some("a"), None, None, 100)).unwrap();
            assert_eq!(
                page.iter().map(|(_, e)| e.at).collect::<Vec<_>>(),
                [108, 106]
            );
        }
    }
}
