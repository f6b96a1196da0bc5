//! Stores for the store's unit tests, so that each runs on both backends: an in-memory redb
//! database, and a new database on a PostgreSQL cluster started once for the test process
//! (skipped, with a note, where PostgreSQL is not installed; a failure under CI).

use super::{Store, pg_cluster};
use crate::clock::Clock;

/// One store of each backend, named.
pub(crate) fn stores(clock: &Clock) -> Vec<(&'static str, Store)> {
    let mut out = vec![(
        "redb",
        Store::open_in_memory(clock.clone()).expect("an in-memory store"),
    )];
    if let Some(cluster) = pg_cluster::shared() {
        let url = pg_cluster::fresh_database(cluster);
        out.push((
            "postgres",
            Store::open_postgres(&url, clock.clone(), 4).expect("a PostgreSQL store"),
        ));
    }
    out
}
