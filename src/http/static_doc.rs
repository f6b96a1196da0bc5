//! Large documents served as they are — the OpenAPI spec and the Swagger UI page (about
//! 1.7 MB with the bundled UI): one shared copy of the bytes for every request, and a Brotli
//! and a gzip copy, each made on the first request that accepts it, for clients that do.

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
    br: OnceLock<Option<Bytes>>,
}

/// Brotli quality: 5 compresses the Swagger page about as fast as gzip's default level does
/// (tens of milliseconds, once per process), and still a third smaller.
const BROTLI_QUALITY: i32 = 5;
const BROTLI_WINDOW_BITS: i32 = 22;

/// Whether an `Accept-Encoding` value accepts `coding` (RFC 9110 §12.5.3: listed, or `*`,
/// with a q-value other than 0).
fn accepts(accept_encoding: &str, wanted: &str) -> bool {
    accept_encoding.split(',').any(|item| {
        let mut parts = item.split(';').map(str::trim);
        let coding = parts.next().unwrap_or_default();
        let refused = parts.any(|p| {
            p.split_once('=').is_some_and(|(k, v)| {
                k.trim().eq_ignore_ascii_case("q")
                    && v.trim().parse::<f32>().is_ok_and(|q| q == 0.0)
            })
        });
        (coding.eq_ignore_ascii_case(wanted) || coding == "*") && !refused
    })
}

impl StaticDoc {
    pub fn new(content_type: &'static str, body: impl Into<Bytes>) -> Self {
        Self {
            content_type,
            plain: body.into(),
            gzip: OnceLock::new(),
            br: OnceLock::new(),
        }
    }

    fn brotli(&self) -> Option<&Bytes> {
        self.br
            .get_or_init(|| {
                let mut out = Vec::with_capacity(self.plain.len() / 5);
                let params = brotli::enc::BrotliEncoderParams {
                    quality: BROTLI_QUALITY,
                    lgwin: BROTLI_WINDOW_BITS,
                    ..Default::default()
                };
                brotli::BrotliCompress(&mut &self.plain[..], &mut out, &params).ok()?;
                Some(Bytes::from(out))
            })
            .as_ref()
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

    /// The document, Brotli- or gzip-encoded when the request accepts either (Brotli first:
    /// it is smaller).
    pub fn respond(&self, req: &Request) -> Response {
        let accepted = req.header(header::ACCEPT_ENCODING).unwrap_or_default();
        let encoded = accepts(accepted, "br")
            .then(|| self.brotli().map(|b| ("br", b)))
            .flatten()
            .or_else(|| {
                accepts(accepted, "gzip")
                    .then(|| self.gzipped().map(|b| ("gzip", b)))
                    .flatten()
            });
        let mut resp = match encoded {
            Some((coding, body)) => Response::builder()
                .header(header::CONTENT_ENCODING, coding)
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
    use super::accepts;

    fn accepts_gzip(header: &str) -> bool {
        accepts(header, "gzip")
    }

    #[test]
    fn brotli_is_chosen_by_its_own_name_and_q_value() {
        assert!(accepts("gzip, deflate, br, zstd", "br"));
        assert!(accepts("BR;q=0.5", "br"));
        assert!(!accepts("br;q=0, gzip", "br"));
        assert!(!accepts("gzip", "br"));
        assert!(!accepts("brotli", "br"));
    }

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
