//! Three portcullis processes' worth of servers on one PostgreSQL database, requests spread
//! across them: they must behave as one server (issue 14, point 3).

use std::sync::Arc;

use portcullis::clock::Clock;
use reqwest::StatusCode;
use serde_json::Value;

use crate::{
    helpers::{PASSWORD, TestApp, start, test_config},
    pg,
};

/// Three servers on one new database, sharing one clock (so time moves for all of them);
/// `None` when PostgreSQL is not installed.
async fn three_nodes(
    adjust: impl Fn(&mut portcullis::config::ServeConfig),
) -> Option<Vec<TestApp>> {
    let cluster = pg::shared()?;
    let url = pg::fresh_database(cluster);
    let clock = Clock::manual();
    let mut nodes = Vec::new();
    for _ in 0..3 {
        let dir = Arc::new(tempfile::tempdir().expect("temp dir"));
        let mut config = test_config(&dir);
        config.database_url = Some(url.clone());
        adjust(&mut config);
        nodes.push(start(config, dir, clock.clone()).await);
    }
    Some(nodes)
}

#[tokio::test]
async fn a_refresh_token_raced_across_nodes_has_one_winner_and_reuse_revokes_everywhere() {
    // No grace for a retried refresh: the race itself is the reuse.
    let Some(nodes) = three_nodes(|c| c.refresh_reuse_grace = 0).await else {
        return;
    };
    let user = nodes[0].register_user("racer").await;
    for round in 0..3 {
        // A fresh family each round, signed in on another node than it is raced on.
        let login: Value = nodes[round % 3]
            .login("racer", PASSWORD)
            .await
            .json()
            .await
            .unwrap();
        let token = login["refresh_token"].as_str().unwrap().to_string();
        let answers = futures_util::future::join_all(nodes.iter().map(|n| n.refresh(&token))).await;
        let mut winners = Vec::new();
        for resp in answers {
            match resp.status() {
                StatusCode::OK => winners.push(resp.json::<Value>().await.unwrap()),
                StatusCode::BAD_REQUEST | StatusCode::UNAUTHORIZED => {}
                other => panic!("round {round}: unexpected {other}"),
            }
        }
        assert_eq!(winners.len(), 1, "round {round}: exactly one node rotates");
        // The losers presented a spent token: the family is revoked, so the winner's new
        // token and access token are refused on every node.
        let next = winners[0]["refresh_token"].as_str().unwrap();
        let access = winners[0]["access_token"].as_str().unwrap();
        for node in &nodes {
            assert_ne!(
                node.refresh(next).await.status(),
                StatusCode::OK,
                "round {round}"
            );
            assert_eq!(
                node.get_me(access).await.status(),
                StatusCode::UNAUTHORIZED,
                "round {round}: revoked on {}",
                node.base
            );
        }
    }
    // The first session, never raced, is untouched.
    assert_eq!(
        nodes[2].get_me(&user.access_token).await.status(),
        StatusCode::OK
    );
}

#[tokio::test]
async fn a_session_ended_on_one_node_is_refused_by_every_node_at_once() {
    let Some(nodes) = three_nodes(|_| {}).await else {
        return;
    };
    let user = nodes[1].register_user("leaver").await;
    for node in &nodes {
        assert_eq!(
            node.get_me(&user.access_token).await.status(),
            StatusCode::OK
        );
    }
    assert!(
        nodes[2]
            .logout(&user.refresh_token)
            .await
            .status()
            .is_success()
    );
    // No waiting: every node reads the session's state from the database.
    for node in &nodes {
        assert_eq!(
            node.get_me(&user.access_token).await.status(),
            StatusCode::UNAUTHORIZED,
            "{}",
            node.base
        );
        assert_ne!(
            node.refresh(&user.refresh_token).await.status(),
            StatusCode::OK
        );
    }
}

#[tokio::test]
async fn failed_sign_ins_spread_over_the_nodes_lock_the_account_on_all_of_them() {
    let Some(nodes) = three_nodes(|_| {}).await else {
        return;
    };
    nodes[0].register_user("target").await;
    // Five failures (the default limit), spread round-robin: no node saw more than two.
    for i in 0..5 {
        assert_eq!(
            nodes[i % 3]
                .login("target", "Wrong-password-123!")
                .await
                .status(),
            StatusCode::UNAUTHORIZED
        );
    }
    for node in &nodes {
        let resp = node.login("target", PASSWORD).await;
        assert_eq!(
            resp.status(),
            StatusCode::TOO_MANY_REQUESTS,
            "{}",
            node.base
        );
        assert!(resp.headers().contains_key("retry-after"));
    }
    nodes[0].clock.advance(901);
    assert_eq!(
        nodes[2].login("target", PASSWORD).await.status(),
        StatusCode::OK
    );
}

#[tokio::test]
async fn codes_captchas_and_keys_made_on_one_node_work_on_the_others() {
    let Some(nodes) = three_nodes(|_| {}).await else {
        return;
    };
    // A captcha made by one node is answered on another, once.
    let (id, answer) = nodes[0].solved_captcha().await;
    let first = nodes[1]
        .services
        .captchas
        .verify(Some(&id), Some(&answer))
        .await;
    let again = nodes[2]
        .services
        .captchas
        .verify(Some(&id), Some(&answer))
        .await;
    assert!(
        first.is_ok(),
        "the answer is right on another node: {first:?}"
    );
    assert!(again.is_err(), "and spent for every node");
    // Every node signs with the same keys: one JWKS, and an access token of one node is
    // accepted by the others.
    let jwks: Vec<Value> =
        futures_util::future::join_all(nodes.iter().map(|n| n.get_json("/oauth2/jwks"))).await;
    assert!(jwks.windows(2).all(|w| w[0] == w[1]), "{jwks:?}");
    let user = nodes[2].register_user("keyholder").await;
    assert_eq!(
        nodes[0].get_me(&user.access_token).await.status(),
        StatusCode::OK
    );
}

#[tokio::test]
async fn only_one_node_sweeps_at_a_time() {
    let Some(nodes) = three_nodes(|_| {}).await else {
        return;
    };
    // The nodes' own sweepers take the same lock (each sweeps once at start): a turn may
    // have to wait for one of them, so each attempt is retried for a bounded time.
    async fn sweep_turn<T: Send + 'static>(
        store: &portcullis::store::Store,
        f: impl Fn(&portcullis::store::Store) -> Result<T, portcullis::store::StoreError>
        + Send
        + Sync
        + Clone
        + 'static,
    ) -> T {
        for _ in 0..200 {
            let (s, f) = (store.clone(), f.clone());
            let got = tokio::task::spawn_blocking(move || s.as_only_sweeper(|| f(&s)))
                .await
                .unwrap()
                .unwrap();
            if let Some(out) = got {
                return out;
            }
            tokio::time::sleep(std::time::Duration::from_millis(25)).await;
        }
        panic!("no sweep turn within 5 s");
    }
    let b = nodes[1].services.store.clone();
    // While node A sweeps, node B's turn is skipped...
    let b_skipped = sweep_turn(&nodes[0].services.store, move |_| {
        Ok(b.as_only_sweeper(|| Ok(()))?.is_none())
    })
    .await;
    assert!(b_skipped, "node B skipped while A held the sweep");
    // ...and once A is done, B gets its turn.
    sweep_turn(&nodes[1].services.store, |_| Ok(())).await;
}

#[tokio::test]
async fn a_key_rotation_made_while_the_nodes_run_reaches_every_node_on_reload() {
    let Some(nodes) = three_nodes(|_| {}).await else {
        return;
    };
    nodes[0].register_user("rotor").await;
    // `portcullis keys rotate` against the shared database, switching at once.
    let store = nodes[2].services.store.clone();
    tokio::task::spawn_blocking(move || {
        store.rotate_keys(
            0,
            portcullis::service::keys::new_access_token_key,
            &portcullis::token::jwt::ID_TOKEN_ALGS,
            portcullis::service::keys::new_id_token_key,
        )
    })
    .await
    .unwrap()
    .unwrap();
    // Node 0 reads the keys again (every 30 s on its own) and signs with the new key.
    nodes[0].services.reload_keys().await.unwrap();
    let fresh: Value = nodes[0]
        .login("rotor", PASSWORD)
        .await
        .json()
        .await
        .unwrap();
    let token = fresh["access_token"].as_str().unwrap();
    // A node that has not read them yet does not know that key...
    assert_eq!(
        nodes[1].get_me(token).await.status(),
        StatusCode::UNAUTHORIZED
    );
    // ...and does after its reload, as do the JWKS of every node.
    for node in &nodes[1..] {
        node.services.reload_keys().await.unwrap();
        assert_eq!(node.get_me(token).await.status(), StatusCode::OK);
    }
    let jwks: Vec<Value> =
        futures_util::future::join_all(nodes.iter().map(|n| n.get_json("/oauth2/jwks"))).await;
    assert!(jwks.windows(2).all(|w| w[0] == w[1]), "{jwks:?}");
}

#[tokio::test]
async fn one_username_registered_on_every_node_at_once_makes_one_account() {
    let Some(nodes) = three_nodes(|_| {}).await else {
        return;
    };
    // Thirty tries, ten per node, of one name in differing case and address.
    let tries = (0..30).map(|i| {
        let node = &nodes[i % 3];
        let name = if i % 2 == 0 { "Contested" } else { "contested" };
        let body = serde_json::json!({
            "username": name,
            "email": format!("try{i}@example.test"),
            "password": PASSWORD,
        });
        async move { node.register(&body).await }
    });
    let answers = futures_util::future::join_all(tries).await;
    let created = answers
        .iter()
        .filter(|r| r.status() == StatusCode::CREATED)
        .count();
    assert_eq!(created, 1, "exactly one account");
    assert!(
        answers
            .iter()
            .all(|r| r.status() == StatusCode::CREATED || r.status() == StatusCode::CONFLICT)
    );
    assert_eq!(nodes[2].table_count("users").await, 1);
    assert_eq!(nodes[1].table_count("usernames").await, 1);
}
