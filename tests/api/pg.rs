//! The throwaway PostgreSQL clusters of the tests (the code is shared with the store's unit
//! tests), and a test of the clusters themselves.

#[path = "../../src/store/pg_cluster.rs"]
mod cluster;

pub use cluster::{PgCluster, fresh_database, required, shared};

#[test]
fn a_throwaway_cluster_starts_answers_and_is_private_to_the_test() {
    let Some(pg) = PgCluster::start() else {
        return;
    };
    assert_eq!(pg.psql("postgres", "select 1 + 1"), "2");
    pg.psql("postgres", "create database portcullis_test");
    assert_eq!(
        pg.psql("portcullis_test", "select current_database()"),
        "portcullis_test"
    );
    // Loopback only.
    assert_eq!(pg.psql("postgres", "show listen_addresses"), "127.0.0.1");
    assert!(
        pg.url("portcullis_test")
            .starts_with("postgres://portcullis@127.0.0.1:")
    );
    let other = PgCluster::start().expect("a second cluster");
    assert_ne!(pg.port, other.port, "each test gets its own server");
}
