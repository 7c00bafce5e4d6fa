//! The web UI, embedded at build time from web/dist. Hashed assets are cached
//! forever (a missing one is a 404); everything else that is not a file gets
//! index.html (SPA routing).
//! Only files inside the bundle are ever served.
//!
//! The web build writes `<file>.br` and `<file>.gz` in place of each text
//! file (web/scripts/precompress.mjs); they are sent, with
//! `Content-Encoding`, to a request whose `Accept-Encoding` takes them
//! (`br` before `gzip`), and the gzip copy is inflated for one that takes
//! neither (rare: browsers, curl and proxies take gzip), so the binary
//! carries no third, plain copy. Every file has a strong ETag (the SHA-256
//! of its bytes as embedded), so a revalidated index.html is a 304.

use axum::body::Body;
use axum::http::{HeaderMap, HeaderValue, StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};
use rust_embed::RustEmbed;

use crate::wire;

/// `make ui` builds web/dist before the binary; a plain `cargo build` without
/// it still compiles and answers "UI not built" at `/`.
#[derive(RustEmbed)]
#[folder = "web/dist/"]
#[allow_missing = true]
struct Assets;

pub async fn serve(uri: Uri, headers: HeaderMap) -> Response {
    let path = uri.path().trim_start_matches('/');
    if path.starts_with("api/") || path == "api" {
        return crate::api::error::ApiError::not_found("no such API route").into_response();
    }
    // The compressed copies are not files of their own: only ever sent as an
    // encoding of the file they were made from.
    let servable = !path.is_empty() && !path.ends_with(".br") && !path.ends_with(".gz");
    match Some(path).filter(|_| servable).and_then(Embedded::get) {
        Some(file) => {
            let cache = if path.starts_with("assets/") { "public, max-age=31536000, immutable" } else { "no-cache" };
            respond(path, file, cache, &headers)
        }
        // A stale page asking for an old bundle gets a 404, not index.html
        // served as JavaScript.
        None if path.starts_with("assets/") => (StatusCode::NOT_FOUND, "no such asset").into_response(),
        None => match Embedded::get("index.html") {
            Some(index) => respond("index.html", index, "no-cache", &headers),
            None => (StatusCode::NOT_FOUND, "UI not built: run `make ui`, then rebuild").into_response(),
        },
    }
}

/// A file of the bundle: kept plain, or only as its gzip copy.
enum Embedded {
    Plain(rust_embed::EmbeddedFile),
    Gzip(rust_embed::EmbeddedFile),
}

impl Embedded {
    fn get(path: &str) -> Option<Embedded> {
        Assets::get(path).map(Embedded::Plain).or_else(|| Assets::get(&format!("{path}.gz")).map(Embedded::Gzip))
    }

    fn sha256(&self) -> [u8; 32] {
        match self {
            Embedded::Plain(f) | Embedded::Gzip(f) => f.metadata.sha256_hash(),
        }
    }

    /// The plain bytes (check-dist.mjs inflated every gzip copy before it
    /// was embedded, so an error here is a broken build).
    fn plain(self) -> std::io::Result<Body> {
        match self {
            // Embedded in the release binary: sent from static memory, not copied.
            Embedded::Plain(f) => Ok(Body::from(f.data)),
            Embedded::Gzip(f) => {
                let mut out = Vec::new();
                std::io::Read::read_to_end(&mut flate2::read::GzDecoder::new(&f.data[..]), &mut out)?;
                Ok(Body::from(out))
            }
        }
    }
}

fn respond(path: &str, file: Embedded, cache: &'static str, req: &HeaderMap) -> Response {
    let etag = wire::etag_for(&file.sha256());
    let cache = HeaderValue::from_static(cache);
    if wire::none_match(req, &etag) {
        return wire::not_modified(etag, cache);
    }
    let mime = mime_guess::from_path(path).first_or_octet_stream();
    let encoded = wire::accepted(req)
        .into_iter()
        .find_map(|coding| Assets::get(&format!("{path}.{}", coding.ext())).map(|f| (coding, f)));
    let (body, coding) = match encoded {
        Some((coding, variant)) => (Body::from(variant.data), Some(coding)),
        None => match file.plain() {
            Ok(body) => (body, None),
            Err(e) => {
                tracing::error!(path, error = %e, "an embedded UI file does not inflate");
                return (StatusCode::INTERNAL_SERVER_ERROR, "the UI in this binary is damaged").into_response();
            }
        },
    };
    let mut resp = Response::new(body);
    let h = resp.headers_mut();
    if let Ok(v) = HeaderValue::from_str(mime.as_ref()) {
        h.insert(header::CONTENT_TYPE, v);
    }
    if let Some(coding) = coding {
        h.insert(header::CONTENT_ENCODING, HeaderValue::from_static(coding.token()));
    }
    h.insert(header::VARY, HeaderValue::from_static("accept-encoding"));
    h.insert(header::ETAG, etag);
    h.insert(header::CACHE_CONTROL, cache);
    resp
}
