//! Large documents served as they are — the OpenAPI spec and the Swagger UI page (about
//! 1.7 MB with the bundled UI): one shared copy of the bytes for every request, and a gzip
//! copy, made on the first request that accepts it, for clients that do.

use std::{io::Write, sync::OnceLock};

use bytes::Bytes;
use poem::{
    Request, Response,
    http::{HeaderValue, header},
};

pub struct StaticDoc {
    content_type: &'static str,
    plain: Bytes,
    /// `None` if compressing failed (then the plain bytes are served).
    gzip: OnceLock<Option<Bytes>>,
}

/// Whether an `Accept-Encoding` value accepts gzip (RFC 9110 §12.5.3: listed, or `*`, with a
/// q-value other than 0).
fn accepts_gzip(accept_encoding: &str) -> bool {
    accept_encoding.split(',').any(|item| {
        let mut parts = item.split(';').map(str::trim);
        let coding = parts.next().unwrap_or_default();
        let refused = parts.any(|p| {
            p.split_once('=').is_some_and(|(k, v)| {
                k.trim().eq_ignore_ascii_case("q")
                    && v.trim().parse::<f32>().is_ok_and(|q| q == 0.0)
            })
        });
        (coding.eq_ignore_ascii_case("gzip") || coding == "*") && !refused
    })
}

impl StaticDoc {
    pub fn new(content_type: &'static str, body: impl Into<Bytes>) -> Self {
        Self {
            content_type,
            plain: body.into(),
            gzip: OnceLock::new(),
        }
    }

    fn gzipped(&self) -> Option<&Bytes> {
        self.gzip
            .get_or_init(|| {
                let mut encoder = flate2::write::GzEncoder::new(
                    Vec::with_capacity(self.plain.len() / 4),
                    flate2::Compression::default(),
                );
                encoder.write_all(&self.plain).ok()?;
                encoder.finish().ok().map(Bytes::from)
            })
            .as_ref()
    }

    /// The document, gzip-encoded when the request accepts it.
    pub fn respond(&self, req: &Request) -> Response {
        let wants_gzip = req
            .header(header::ACCEPT_ENCODING)
            .is_some_and(accepts_gzip);
        let mut resp = match self.gzipped().filter(|_| wants_gzip) {
            Some(body) => Response::builder()
                .header(header::CONTENT_ENCODING, "gzip")
                .body(body.clone()),
            None => Response::builder().body(self.plain.clone()),
        };
        resp.headers_mut().insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static(self.content_type),
        );
        resp.headers_mut()
            .insert(header::VARY, HeaderValue::from_static("accept-encoding"));
        resp
    }
}

#[cfg(test)]
mod tests {
    use super::accepts_gzip;

    #[test]
    fn gzip_is_used_only_when_accepted() {
        assert!(accepts_gzip("gzip"));
        assert!(accepts_gzip("br, gzip;q=0.8, deflate"));
        assert!(accepts_gzip("*"));
        assert!(accepts_gzip("GZIP"));
        assert!(!accepts_gzip("gzip;q=0"));
        assert!(!accepts_gzip("br, deflate"));
        assert!(!accepts_gzip(""));
    }
}
