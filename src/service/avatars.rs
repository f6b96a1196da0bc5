//! Avatar uploads: the type is decided by the bytes, the image is decoded under limits (a
//! decompression bomb or an absurd header fails before any large allocation) and re-encoded
//! as a PNG of at most 512×512, so what we serve is never the uploaded file.

use std::io::Cursor;

use image::{ImageFormat, ImageReader, Limits};
use sha2::{Digest, Sha256};

use super::{Principal, Result, ServiceError, views::UserView};
use crate::store::Store;

/// Largest side of a stored avatar.
pub const AVATAR_SIZE: u32 = 512;
/// Largest accepted source dimensions and decoder memory.
const MAX_SOURCE_SIDE: u32 = 8192;
const MAX_DECODE_ALLOC: u64 = 128 * 1024 * 1024;

#[derive(Clone)]
pub struct Avatars {
    store: Store,
    max_bytes: usize,
}

impl Avatars {
    pub fn new(store: Store, max_bytes: usize) -> Self {
        Self { store, max_bytes }
    }

    pub fn max_bytes(&self) -> usize {
        self.max_bytes
    }

    /// Validates, normalises and stores an avatar; returns the updated user.
    pub async fn set(&self, principal: &Principal, bytes: Vec<u8>) -> Result<UserView> {
        self.set_for(&principal.user.id, bytes).await
    }

    /// [`Avatars::set`] for the user `user_id` (a picture brought from an upstream provider).
    pub async fn set_for(&self, user_id: &str, bytes: Vec<u8>) -> Result<UserView> {
        if bytes.len() > self.max_bytes {
            return Err(ServiceError::TooLarge {
                limit: self.max_bytes,
            });
        }
        let png = tokio::task::spawn_blocking(move || normalise(&bytes))
            .await
            .map_err(|e| ServiceError::Internal(format!("image task failed: {e}")))??;
        let etag = crate::store::codes::hex(&Sha256::digest(&png)[..12]);
        let id = user_id.to_string();
        self.store
            .run(move |s| s.set_avatar(&id, &etag, &png))
            .await?
            .map(UserView::from)
            .ok_or(ServiceError::InvalidToken)
    }

    pub async fn delete(&self, principal: &Principal) -> Result<UserView> {
        let id = principal.user.id.clone();
        self.store
            .run(move |s| s.delete_avatar(&id))
            .await?
            .map(UserView::from)
            .ok_or(ServiceError::InvalidToken)
    }

    /// ETag and PNG bytes of a user's avatar.
    pub async fn get(&self, user_id: &str) -> Result<(String, Vec<u8>)> {
        let id = user_id.to_string();
        self.store
            .run(move |s| s.get_avatar(&id))
            .await?
            .ok_or(ServiceError::NotFound("avatar"))
    }
}

/// Decodes PNG, JPEG, GIF or WebP (detected from the bytes) under limits and re-encodes it
/// as a PNG no larger than [`AVATAR_SIZE`] on either side.
pub fn normalise(bytes: &[u8]) -> Result<Vec<u8>> {
    let format = image::guess_format(bytes).map_err(|_| ServiceError::UnsupportedImage)?;
    if !matches!(
        format,
        ImageFormat::Png | ImageFormat::Jpeg | ImageFormat::Gif | ImageFormat::WebP
    ) {
        return Err(ServiceError::UnsupportedImage);
    }
    let mut limits = Limits::default();
    limits.max_image_width = Some(MAX_SOURCE_SIDE);
    limits.max_image_height = Some(MAX_SOURCE_SIDE);
    limits.max_alloc = Some(MAX_DECODE_ALLOC);
    let mut reader = ImageReader::with_format(Cursor::new(bytes), format);
    reader.limits(limits);
    let image = reader
        .decode()
        .map_err(|e| ServiceError::InvalidImage(e.to_string()))?;
    let image = if image.width() > AVATAR_SIZE || image.height() > AVATAR_SIZE {
        image.thumbnail(AVATAR_SIZE, AVATAR_SIZE)
    } else {
        image
    };
    let mut out = Cursor::new(Vec::new());
    image
        .write_to(&mut out, ImageFormat::Png)
        .map_err(|e| ServiceError::Internal(format!("PNG encoding failed: {e}")))?;
    Ok(out.into_inner())
}

/// A PNG with only a (checksummed) header claiming `w`×`h` RGBA pixels: what a decompression
/// bomb looks like to a decoder before it allocates. Public for the integration tests.
#[doc(hidden)]
pub fn test_png_header(w: u32, h: u32) -> Vec<u8> {
    fn crc32(bytes: &[u8]) -> u32 {
        let mut crc = 0xFFFF_FFFFu32;
        for &b in bytes {
            crc ^= u32::from(b);
            for _ in 0..8 {
                crc = if crc & 1 == 1 {
                    (crc >> 1) ^ 0xEDB8_8320
                } else {
                    crc >> 1
                };
            }
        }
        !crc
    }
    fn chunk(out: &mut Vec<u8>, kind: &[u8; 4], data: &[u8]) {
        out.extend_from_slice(&(data.len() as u32).to_be_bytes());
        let start = out.len();
        out.extend_from_slice(kind);
        out.extend_from_slice(data);
        let crc = crc32(&out[start..]);
        out.extend_from_slice(&crc.to_be_bytes());
    }
    let mut out = b"\x89PNG\r\n\x1a\n".to_vec();
    let mut ihdr = Vec::new();
    ihdr.extend_from_slice(&w.to_be_bytes());
    ihdr.extend_from_slice(&h.to_be_bytes());
    ihdr.extend_from_slice(&[8, 6, 0, 0, 0]); // 8-bit RGBA, no interlace
    chunk(&mut out, b"IHDR", &ihdr);
    // A little zlib stream of zeros, as a bomb would carry (much) more of.
    chunk(
        &mut out,
        b"IDAT",
        &[0x78, 0x9c, 0x03, 0x00, 0x00, 0x00, 0x00, 0x01],
    );
    chunk(&mut out, b"IEND", &[]);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn png(w: u32, h: u32) -> Vec<u8> {
        let img = image::RgbImage::from_pixel(w, h, image::Rgb([200, 10, 10]));
        let mut out = Cursor::new(Vec::new());
        img.write_to(&mut out, ImageFormat::Png).unwrap();
        out.into_inner()
    }

    #[test]
    fn large_images_are_shrunk_to_fit_512() {
        let out = normalise(&png(1024, 600)).unwrap();
        let img = image::load_from_memory(&out).unwrap();
        assert_eq!((img.width(), img.height()), (512, 300));
    }

    #[test]
    fn html_named_png_is_refused() {
        assert!(matches!(
            normalise(b"<html><script>alert(1)</script></html>"),
            Err(ServiceError::UnsupportedImage)
        ));
    }

    #[test]
    fn absurd_dimensions_fail_on_the_limits_without_allocating() {
        for (w, h) in [(65535, 65535), (8192, 8192)] {
            match normalise(&crate::service::avatars::test_png_header(w, h)) {
                Err(ServiceError::InvalidImage(msg)) => {
                    assert!(msg.contains("limit"), "{w}x{h}: {msg}")
                }
                other => panic!("{w}x{h}: expected a limits error, got {other:?}"),
            }
        }
    }
}
