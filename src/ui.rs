//! The web UI, embedded at build time from web/dist. Hashed assets are cached
//! forever (a missing one is a 404); everything else that is not a file gets
//! index.html (SPA routing).
//! Only files inside the bundle are ever served.

use axum::body::Body;
use axum::http::{HeaderValue, StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};
use rust_embed::RustEmbed;

/// `make ui` builds web/dist before the binary; a plain `cargo build` without
/// it still compiles and answers "UI not built" at `/`.
#[derive(RustEmbed)]
#[folder = "web/dist/"]
#[allow_missing = true]
struct Assets;

pub async fn serve(uri: Uri) -> Response {
    let path = uri.path().trim_start_matches('/');
    if path.starts_with("api/") || path == "api" {
        return crate::api::error::ApiError::not_found("no such API route").into_response();
    }
    match Assets::get(path).filter(|_| !path.is_empty()) {
        Some(file) => {
            let cache = if path.starts_with("assets/") { "public, max-age=31536000, immutable" } else { "no-cache" };
            respond(path, file, cache)
        }
        // A stale page asking for an old bundle gets a 404, not index.html
        // served as JavaScript.
        None if path.starts_with("assets/") => (StatusCode::NOT_FOUND, "no such asset").into_response(),
        None => match Assets::get("index.html") {
            Some(index) => respond("index.html", index, "no-cache"),
            None => (StatusCode::NOT_FOUND, "UI not built: run `make ui`, then rebuild").into_response(),
        },
    }
}

fn respond(path: &str, file: rust_embed::EmbeddedFile, cache: &'static str) -> Response {
    let mime = mime_guess::from_path(path).first_or_octet_stream();
    let mut resp = Response::new(Body::from(file.data.into_owned()));
    let h = resp.headers_mut();
    if let Ok(v) = HeaderValue::from_str(mime.as_ref()) {
        h.insert(header::CONTENT_TYPE, v);
    }
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static(cache));
    resp
}
