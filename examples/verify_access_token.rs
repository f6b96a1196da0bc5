//! A resource server verifying a portcullis access token offline.
//!
//! ```text
//! cargo run --example verify_access_token -- http://127.0.0.1:8080 <access_token> [expected-audience]
//! ```
//!
//! Fetches the PASERK public keys once (`/oauth2/paserk`; cache them in a real service), picks
//! the key named by the token's footer `kid`, verifies the PASETO v4.public signature, then
//! checks issuer, audience and the validity window. No call to the server per request.

use pasetors::{
    keys::AsymmetricPublicKey,
    token::{Public, UntrustedToken},
    version4::{PublicToken, V4},
};
use serde_json::Value;

fn unix_time(rfc3339: &str) -> Option<i64> {
    time::OffsetDateTime::parse(rfc3339, &time::format_description::well_known::Rfc3339)
        .ok()
        .map(|t| t.unix_timestamp())
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error + Send + Sync>> {
    let mut args = std::env::args().skip(1);
    let (Some(issuer), Some(token)) = (args.next(), args.next()) else {
        eprintln!("usage: verify_access_token <issuer-url> <access_token> [expected-audience]");
        std::process::exit(2);
    };
    let issuer = issuer.trim_end_matches('/').to_string();
    let audience = args.next();

    let published: Value = reqwest::get(format!("{issuer}/oauth2/paserk"))
        .await?
        .json()
        .await?;
    let untrusted = UntrustedToken::<Public, V4>::try_from(token.as_str())?;
    let footer: Value = serde_json::from_slice(untrusted.untrusted_footer())?;
    let kid = footer["kid"]
        .as_str()
        .ok_or("the token has no kid in its footer")?;
    let paserk = published["keys"]
        .as_array()
        .and_then(|keys| keys.iter().find(|k| k["kid"] == kid))
        .and_then(|k| k["paserk"].as_str())
        .ok_or("no published key matches the token's kid")?;
    let key = AsymmetricPublicKey::<V4>::try_from(paserk)?;

    let trusted = PublicToken::verify(&key, &untrusted, Some(untrusted.untrusted_footer()), None)?;
    let claims: Value = serde_json::from_str(trusted.payload())?;
    let now = time::OffsetDateTime::now_utc().unix_timestamp();
    if claims["iss"] != issuer.as_str() {
        return Err(format!("wrong issuer {}", claims["iss"]).into());
    }
    if let Some(aud) = audience
        && claims["aud"] != aud.as_str()
    {
        return Err(format!("meant for audience {}, not {aud}", claims["aud"]).into());
    }
    let exp = claims["exp"]
        .as_str()
        .and_then(unix_time)
        .ok_or("bad exp")?;
    let nbf = claims["nbf"]
        .as_str()
        .and_then(unix_time)
        .ok_or("bad nbf")?;
    if now >= exp || now < nbf {
        return Err("the token is outside its validity window".into());
    }
    println!(
        "valid token for subject {} with scope {:?}",
        claims["sub"], claims["scope"]
    );
    println!("{}", serde_json::to_string_pretty(&claims)?);
    // Revocation is only visible online: ask /oauth2/introspect when that matters.
    Ok(())
}
