//! The committed spec matches the code; every operation is documented; Swagger UI is bundled.

use reqwest::StatusCode;
use serde_json::Value;

use crate::helpers::spawn_app;

const REGENERATE: &str = "cargo run -- export-openapi openapi/openapi.json";

fn generated() -> String {
    let services = portcullis::cli::spec_services().expect("spec services");
    portcullis::http::spec_json(&services)
}

#[test]
fn committed_spec_matches_the_generated_one() {
    let committed =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/openapi/openapi.json"))
            .unwrap_or_default();
    assert!(
        committed == generated(),
        "openapi/openapi.json is out of date with the code; regenerate it with:\n    {REGENERATE}"
    );
}

#[test]
fn every_operation_has_summary_tags_and_error_responses() {
    let spec: Value = serde_json::from_str(&generated()).unwrap();
    let paths = spec["paths"].as_object().unwrap();
    assert!(paths.len() >= 10, "{} paths", paths.len());
    for (path, item) in paths {
        for (method, op) in item.as_object().unwrap() {
            let name = format!("{method} {path}");
            assert!(
                op["summary"].as_str().is_some_and(|s| !s.is_empty()),
                "{name} has no summary"
            );
            assert!(
                op["tags"].as_array().is_some_and(|t| !t.is_empty()),
                "{name} has no tag"
            );
            assert!(op["operationId"].is_string(), "{name} has no operationId");
            let compatible = op["tags"].as_array().is_some_and(|t| {
                t.iter()
                    .any(|t| t.as_str().unwrap_or_default().starts_with("Compatible: "))
            });
            if compatible {
                // The compatible APIs answer in their documents' shapes, not problem+json; each
                // describes its in-body codes.
                assert!(
                    op["description"].as_str().is_some_and(|d| !d.is_empty()),
                    "{name} does not describe its answers"
                );
                continue;
            }
            let responses = op["responses"].as_object().unwrap();
            let lists = |status: &str| {
                responses
                    .get(status)
                    .is_some_and(|r| r["content"]["application/problem+json"].is_object())
            };
            for (status, r) in responses {
                if status.starts_with('4') || status.starts_with('5') {
                    assert!(
                        r["content"]["application/problem+json"].is_object(),
                        "{name} {status} is not problem+json"
                    );
                }
            }
            if op.get("requestBody").is_some() {
                for status in ["400", "413", "415", "422", "500"] {
                    assert!(
                        lists(status),
                        "{name} takes a body but does not list {status}"
                    );
                }
            }
            if op.get("security").is_some() {
                assert!(lists("401"), "{name} is protected but does not list 401");
            }
        }
    }
}

#[test]
fn protected_operations_declare_bearer_and_api_key_security() {
    let spec: Value = serde_json::from_str(&generated()).unwrap();
    let schemes = &spec["components"]["securitySchemes"];
    assert_eq!(schemes["BearerAuth"]["scheme"], "bearer");
    assert_eq!(schemes["ApiKeyAuth"]["name"], "X-Api-Key");
    let me = &spec["paths"]["/api/v1/me"]["get"];
    let security = me["security"].as_array().unwrap();
    assert!(security.iter().any(|s| s.get("BearerAuth").is_some()));
    assert!(security.iter().any(|s| s.get("ApiKeyAuth").is_some()));
    assert!(
        spec["paths"]["/api/v1/sessions"]["post"]
            .get("security")
            .is_none()
    );
}

#[tokio::test]
async fn served_spec_equals_the_committed_file_and_swagger_ui_is_bundled() {
    let app = spawn_app().await;
    let served = app
        .client
        .get(app.url("/openapi.json"))
        .send()
        .await
        .unwrap();
    assert_eq!(served.status(), StatusCode::OK);
    assert_eq!(served.text().await.unwrap(), generated());

    let ui = app.client.get(app.url("/swagger")).send().await.unwrap();
    assert_eq!(ui.status(), StatusCode::OK);
    let html = ui.text().await.unwrap();
    assert!(html.contains("SwaggerUIBundle"));
    assert!(html.contains("name=\"viewport\""), "readable on a phone");
    assert!(
        html.contains("\"/api/user_info/\""),
        "the page embeds our spec, documented trailing slashes included"
    );
    assert!(
        !html.contains("cdn.jsdelivr") && !html.contains("unpkg.com"),
        "Swagger UI must not load from the network"
    );
}

#[tokio::test]
async fn switched_off_compatible_apis_are_404_and_absent_from_the_spec() {
    use portcullis::config::CompatApi;
    let app = crate::helpers::spawn_app_with(|c| c.compat = vec![CompatApi::Sso]).await;
    let spec: Value = app.get_json("/openapi.json").await;
    let paths = spec["paths"].as_object().unwrap();
    assert!(paths.contains_key("/login/"), "sso is on");
    assert!(!paths.contains_key("/api/login") && !paths.contains_key("/oauth/token"));
    let tags: Vec<&str> = spec["tags"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|t| t["name"].as_str())
        .collect();
    assert!(tags.contains(&"Compatible: sso-api.md"));
    assert!(!tags.contains(&"Compatible: account-api.md"));
    for path in ["/api/login", "/oauth/token", "/oauth/check_token"] {
        let resp = app.client.post(app.url(path)).send().await.unwrap();
        assert_eq!(resp.status(), StatusCode::NOT_FOUND, "{path}");
    }
    let resp = app.client.get(app.url("/auth/")).send().await.unwrap();
    assert_eq!(resp.status(), StatusCode::OK, "sso stays on");
    let page = app
        .client
        .get(app.url("/swagger"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(page.contains("\"/login/\"") && !page.contains("\"/api/login\""));

    let none = crate::helpers::spawn_app_with(|c| c.compat = vec![CompatApi::None]).await;
    let resp = none.client.get(none.url("/auth/")).send().await.unwrap();
    assert_eq!(resp.status(), StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn the_spec_and_swagger_ui_are_compressed_for_clients_that_accept_it() {
    use std::io::Read;
    let app = spawn_app().await;
    for path in ["/openapi.json", "/swagger"] {
        let plain = app.client.get(app.url(path)).send().await.unwrap();
        assert_eq!(plain.status(), StatusCode::OK);
        assert!(plain.headers().get("content-encoding").is_none(), "{path}");
        let plain = plain.bytes().await.unwrap();
        let fetch = |accept: &'static str| {
            let req = app
                .client
                .get(app.url(path))
                .header("accept-encoding", accept);
            async move {
                let resp = req.send().await.unwrap();
                assert_eq!(resp.headers()["vary"], "accept-encoding");
                let coding = resp.headers()["content-encoding"]
                    .to_str()
                    .unwrap()
                    .to_string();
                (coding, resp.bytes().await.unwrap())
            }
        };
        // Brotli refused by q=0: gzip.
        let (coding, zipped) = fetch("br;q=0, gzip").await;
        assert_eq!(coding, "gzip", "{path}");
        let mut unzipped = Vec::new();
        flate2::read::GzDecoder::new(zipped.as_ref())
            .read_to_end(&mut unzipped)
            .unwrap();
        assert_eq!(unzipped, plain.as_ref(), "{path}: the same document");
        // Both accepted, as browsers send it: Brotli, smaller still.
        let (coding, brotli) = fetch("gzip, deflate, br, zstd").await;
        assert_eq!(coding, "br", "{path}");
        assert!(
            brotli.len() < zipped.len() && zipped.len() * 3 < plain.len(),
            "{path}: br {} and gzip {} of {}",
            brotli.len(),
            zipped.len(),
            plain.len()
        );
        let mut unbrotli = Vec::new();
        brotli::BrotliDecompress(&mut brotli.as_ref(), &mut unbrotli).unwrap();
        assert_eq!(unbrotli, plain.as_ref(), "{path}: the same document");
    }
}
