//! Avatar upload, validation by content, re-encoding, caching headers and removal.

use std::io::Cursor;

use reqwest::StatusCode;
use serde_json::Value;

use crate::helpers::{problem, spawn_app, spawn_app_with};

/// A PNG of random pixels (so it does not compress), tinted by `rgb`.
pub(crate) fn png(w: u32, h: u32, rgb: [u8; 3]) -> Vec<u8> {
    let img = image::RgbImage::from_fn(w, h, |_, _| {
        let noise: [u8; 3] = rand::random();
        image::Rgb([rgb[0] ^ noise[0], rgb[1] ^ noise[1], rgb[2] ^ noise[2]])
    });
    let mut out = Cursor::new(Vec::new());
    img.write_to(&mut out, image::ImageFormat::Png).unwrap();
    out.into_inner()
}

fn jpeg(w: u32, h: u32) -> Vec<u8> {
    let img = image::RgbImage::from_pixel(w, h, image::Rgb([10, 120, 200]));
    let mut out = Cursor::new(Vec::new());
    img.write_to(&mut out, image::ImageFormat::Jpeg).unwrap();
    out.into_inner()
}

#[tokio::test]
async fn upload_is_reencoded_to_png_and_served_with_cache_headers() {
    let app = spawn_app().await;
    let user = app.register_user("ray").await;
    let resp = app
        .upload_avatar(&user.access_token, "me.jpg", "image/jpeg", jpeg(1024, 768))
        .await;
    assert_eq!(resp.status(), StatusCode::OK);
    let me: Value = resp.json().await.unwrap();
    let url = me["avatar_url"].as_str().expect("avatar_url set");
    assert!(
        url.starts_with(&format!(
            "http://portcullis.localhost/api/v1/users/{}/avatar?v=",
            user.id
        )),
        "{url}"
    );

    let resp = app.get_avatar(&user.id, None).await;
    assert_eq!(resp.status(), StatusCode::OK);
    let h = resp.headers().clone();
    assert_eq!(h["content-type"], "image/png");
    assert_eq!(h["x-content-type-options"], "nosniff");
    assert!(h["cache-control"].to_str().unwrap().contains("max-age"));
    let etag = h["etag"].to_str().unwrap().to_string();
    assert!(etag.starts_with('"') && etag.ends_with('"'));
    let bytes = resp.bytes().await.unwrap();
    let img = image::load_from_memory_with_format(&bytes, image::ImageFormat::Png).unwrap();
    assert_eq!((img.width(), img.height()), (512, 384));

    let not_modified = app.get_avatar(&user.id, Some(&etag)).await;
    assert_eq!(not_modified.status(), StatusCode::NOT_MODIFIED);
    assert_eq!(not_modified.headers()["etag"].to_str().unwrap(), etag);
    assert_eq!(
        app.get_avatar(&user.id, Some("\"other\"")).await.status(),
        StatusCode::OK
    );
}

#[tokio::test]
async fn replacing_and_deleting_remove_the_old_bytes() {
    let app = spawn_app().await;
    let user = app.register_user("sue").await;
    app.upload_avatar(
        &user.access_token,
        "a.png",
        "image/png",
        png(64, 64, [255, 0, 0]),
    )
    .await;
    let first = app.get_avatar(&user.id, None).await.headers()["etag"].clone();
    app.upload_avatar(
        &user.access_token,
        "b.png",
        "image/png",
        png(64, 64, [0, 0, 255]),
    )
    .await;
    let second = app.get_avatar(&user.id, None).await.headers()["etag"].clone();
    assert_ne!(first, second);
    assert_eq!(app.table_count("avatars").await, 1);

    assert_eq!(
        app.delete_avatar(&user.access_token).await.status(),
        StatusCode::NO_CONTENT
    );
    assert_eq!(
        problem(app.get_avatar(&user.id, None).await, StatusCode::NOT_FOUND).await["code"],
        "not_found"
    );
    assert_eq!(app.table_count("avatars").await, 0);
    let me: Value = app.get_me(&user.access_token).await.json().await.unwrap();
    assert_eq!(me["avatar_url"], Value::Null);
}

#[tokio::test]
async fn type_comes_from_the_bytes_not_the_name_or_header() {
    let app = spawn_app().await;
    let user = app.register_user("tom").await;
    let html = b"<html><body><script>alert(document.cookie)</script></body></html>".to_vec();
    let p = problem(
        app.upload_avatar(&user.access_token, "cute.png", "image/png", html)
            .await,
        StatusCode::BAD_REQUEST,
    )
    .await;
    assert_eq!(p["code"], "unsupported_image_type");
    // A real PNG sent with a misleading name and type is fine: the bytes decide.
    let resp = app
        .upload_avatar(
            &user.access_token,
            "notes.txt",
            "text/plain",
            png(10, 10, [1, 2, 3]),
        )
        .await;
    assert_eq!(resp.status(), StatusCode::OK);
}

#[tokio::test]
async fn bombs_and_absurd_headers_are_400_without_decoding() {
    let app = spawn_app().await;
    let user = app.register_user("uli").await;
    for (w, h) in [(65535, 65535), (8192, 8192)] {
        let bytes = portcullis::service::avatars::test_png_header(w, h);
        let p = problem(
            app.upload_avatar(&user.access_token, "bomb.png", "image/png", bytes)
                .await,
            StatusCode::BAD_REQUEST,
        )
        .await;
        assert_eq!(p["code"], "invalid_image", "{w}x{h}");
    }
    assert_eq!(app.table_count("avatars").await, 0);
}

#[tokio::test]
async fn oversized_uploads_are_413() {
    let app = spawn_app().await;
    let user = app.register_user("vic").await;
    let big = vec![0u8; 1024 * 1024 + 64 * 1024];
    let p = problem(
        app.upload_avatar(&user.access_token, "big.png", "image/png", big)
            .await,
        StatusCode::PAYLOAD_TOO_LARGE,
    )
    .await;
    assert_eq!(p["code"], "payload_too_large");

    // The limit is configurable; a file over it inside a body under the framing allowance.
    let app = spawn_app_with(|c| c.max_avatar_bytes = 2048).await;
    let user = app.register_user("wil").await;
    let file = png(64, 64, [9, 9, 9]);
    assert!(file.len() > 2048, "{}", file.len());
    let p = problem(
        app.upload_avatar(&user.access_token, "x.png", "image/png", file)
            .await,
        StatusCode::PAYLOAD_TOO_LARGE,
    )
    .await;
    assert_eq!(p["code"], "payload_too_large");
}

#[tokio::test]
async fn avatar_needs_auth_and_a_file_field() {
    let app = spawn_app().await;
    let user = app.register_user("xia").await;
    let resp = app
        .client
        .put(app.url("/api/v1/me/avatar"))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::UNAUTHORIZED);
    let form = reqwest::multipart::Form::new().text("other", "x");
    let resp = app
        .client
        .put(app.url("/api/v1/me/avatar"))
        .bearer_auth(&user.access_token)
        .multipart(form)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::BAD_REQUEST);
    assert_eq!(
        problem(
            app.get_avatar("no-such-user", None).await,
            StatusCode::NOT_FOUND
        )
        .await["code"],
        "not_found"
    );
}
