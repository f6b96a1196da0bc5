//! A command-line app signing a user in with the authorization code flow and PKCE, using a
//! loopback redirect (RFC 8252 §7.3).
//!
//! ```text
//! cargo run --release -- serve --seed seed.toml          # with the "demo" client of DESIGN.md
//! cargo run --example authorization_code_client -- http://127.0.0.1:8080 demo demo-secret-change-me
//! ```
//!
//! Arguments: issuer URL, client id, optional client secret (omit for a public client), and
//! optionally the loopback port (default 9999; `http://127.0.0.1:<port>/callback` must be a
//! registered redirect URI of the client). Prints the URL to open, waits for the browser to
//! come back, checks `state`, and exchanges the code (with the PKCE verifier) for tokens.

use base64::{Engine, engine::general_purpose::URL_SAFE_NO_PAD};
use rand::RngCore;
use serde_json::Value;
use sha2::{Digest, Sha256};
use tokio::{
    io::{AsyncReadExt, AsyncWriteExt},
    net::TcpListener,
};

fn random(n: usize) -> String {
    let mut bytes = vec![0u8; n];
    rand::rng().fill_bytes(&mut bytes);
    URL_SAFE_NO_PAD.encode(bytes)
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error + Send + Sync>> {
    let mut args = std::env::args().skip(1);
    let (Some(issuer), Some(client_id)) = (args.next(), args.next()) else {
        eprintln!(
            "usage: authorization_code_client <issuer-url> <client-id> [client-secret] [port]"
        );
        std::process::exit(2);
    };
    let secret = args.next().filter(|s| !s.is_empty() && s != "-");
    let port: u16 = args.next().and_then(|p| p.parse().ok()).unwrap_or(9999);
    let issuer = issuer.trim_end_matches('/');

    let listener = TcpListener::bind(("127.0.0.1", port)).await?;
    let redirect_uri = format!("http://127.0.0.1:{port}/callback");
    // RFC 7636 §4.1–4.2: a random verifier and its S256 challenge.
    let verifier = random(32);
    let challenge = URL_SAFE_NO_PAD.encode(Sha256::digest(verifier.as_bytes()));
    let state = random(16);
    let query: String = url::form_urlencoded::Serializer::new(String::new())
        .extend_pairs([
            ("response_type", "code"),
            ("client_id", client_id.as_str()),
            ("redirect_uri", redirect_uri.as_str()),
            ("scope", "openid profile email"),
            ("state", state.as_str()),
            ("code_challenge", challenge.as_str()),
            ("code_challenge_method", "S256"),
        ])
        .finish();
    println!("Open this URL in a browser and sign in:\n\n  {issuer}/oauth2/authorize?{query}\n");
    println!("waiting for the redirect on {redirect_uri} …");

    let (mut conn, _) = listener.accept().await?;
    let mut buf = vec![0u8; 8192];
    let n = conn.read(&mut buf).await?;
    let request = String::from_utf8_lossy(&buf[..n]);
    let target = request.split_whitespace().nth(1).unwrap_or_default();
    let params: std::collections::HashMap<String, String> = url::form_urlencoded::parse(
        target
            .split_once('?')
            .map(|(_, q)| q)
            .unwrap_or_default()
            .as_bytes(),
    )
    .into_owned()
    .collect();
    conn.write_all(b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nConnection: close\r\n\r\nSigned in; you can close this window.\n")
        .await?;
    if let Some(error) = params.get("error") {
        return Err(format!(
            "authorization failed: {error} {}",
            params.get("error_description").cloned().unwrap_or_default()
        )
        .into());
    }
    if params.get("state") != Some(&state) {
        return Err("state mismatch: the redirect did not come from our request".into());
    }
    let code = params.get("code").ok_or("no code in the redirect")?;

    let mut form = vec![
        ("grant_type", "authorization_code"),
        ("code", code.as_str()),
        ("redirect_uri", redirect_uri.as_str()),
        ("code_verifier", verifier.as_str()),
    ];
    let client = portcullis::outbound::client_builder()
        .and_then(|b| b.build().map_err(|e| e.to_string()))
        .expect("HTTP client");
    let mut req = client.post(format!("{issuer}/oauth2/token"));
    match &secret {
        Some(s) => req = req.basic_auth(&client_id, Some(s)),
        None => form.push(("client_id", client_id.as_str())),
    }
    let resp = req.form(&form).send().await?;
    let status = resp.status();
    let body: Value = resp.json().await?;
    if !status.is_success() {
        return Err(format!("token request failed ({status}): {body}").into());
    }
    println!("{}", serde_json::to_string_pretty(&body)?);
    Ok(())
}
