//! `/api/v1/me/avatar` and `/api/v1/users/{id}/avatar`.

use poem_openapi::{
    ApiResponse, Multipart, OpenApi,
    param::{Header, Path},
    payload::{Binary, Json},
    types::multipart::Upload,
};

use super::{ApiTags, me::principal, types::User};
use crate::{
    http::{error::Result, security::Auth},
    service::{ServiceError, Services},
};

pub struct AvatarsApi {
    pub services: Services,
}

/// An avatar upload.
#[derive(Multipart)]
pub struct AvatarUpload {
    /// PNG, JPEG, GIF or WebP (decided by the bytes, not the name), at most the configured
    /// size (1 MiB by default). Stored re-encoded as PNG, at most 512×512.
    pub file: Upload,
}

#[derive(ApiResponse)]
enum AvatarImage {
    /// The avatar as PNG.
    #[oai(status = 200, content_type = "image/png")]
    Ok(
        Binary<Vec<u8>>,
        #[oai(header = "ETag")] String,
        #[oai(header = "Cache-Control")] String,
    ),
    /// Unchanged since the `If-None-Match` ETag.
    #[oai(status = 304)]
    NotModified(#[oai(header = "ETag")] String),
}

#[derive(ApiResponse)]
enum AvatarDeleted {
    /// Removed (or there was none).
    #[oai(status = 204)]
    NoContent,
}

#[OpenApi(tag = "ApiTags::Me")]
impl AvatarsApi {
    /// Upload my avatar
    ///
    /// Multipart field `file`. The image type comes from the file's bytes; anything else is
    /// 400 `unsupported_image_type`, images too large to decode safely are 400
    /// `invalid_image`, bodies over the limit 413. Replaces any previous avatar.
    #[oai(path = "/api/v1/me/avatar", method = "put", operation_id = "putAvatar")]
    async fn put(&self, auth: Auth, upload: AvatarUpload) -> Result<Json<User>> {
        let p = principal(&self.services, auth).await?;
        let max = self.services.avatars.max_bytes();
        if upload.file.size() > max {
            return Err(ServiceError::TooLarge { limit: max }.into());
        }
        let bytes =
            upload.file.into_vec().await.map_err(|e| {
                ServiceError::InvalidImage(format!("could not read the upload: {e}"))
            })?;
        let user = self.services.avatars.set(&p, bytes).await?;
        Ok(Json(User::of(&user, &self.services.public_url)))
    }

    /// Remove my avatar
    #[oai(
        path = "/api/v1/me/avatar",
        method = "delete",
        operation_id = "deleteAvatar"
    )]
    async fn delete(&self, auth: Auth) -> Result<AvatarDeleted> {
        let p = principal(&self.services, auth).await?;
        self.services.avatars.delete(&p).await?;
        Ok(AvatarDeleted::NoContent)
    }

    /// Get a user's avatar
    ///
    /// Public. Served as `image/png` with an `ETag`; send it back in `If-None-Match` to get
    /// 304. 404 when the user has no avatar.
    #[oai(
        path = "/api/v1/users/:id/avatar",
        method = "get",
        operation_id = "getAvatar"
    )]
    async fn get(
        &self,
        id: Path<String>,
        #[oai(name = "If-None-Match")] if_none_match: Header<Option<String>>,
    ) -> Result<AvatarImage> {
        let (etag, png) = self.services.avatars.get(&id).await?;
        let quoted = format!("\"{etag}\"");
        let matches = if_none_match.0.as_deref().is_some_and(|v| {
            v.split(',')
                .any(|t| t.trim().trim_start_matches("W/") == quoted || t.trim() == "*")
        });
        if matches {
            return Ok(AvatarImage::NotModified(quoted));
        }
        Ok(AvatarImage::Ok(
            Binary(png),
            quoted,
            "public, max-age=300, must-revalidate".into(),
        ))
    }
}
