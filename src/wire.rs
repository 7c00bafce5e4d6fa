//! Bytes on the wire: which content-coding a request accepts, strong ETags
//! with `If-None-Match` (304), and the rule for which responses are
//! compressed at run time. The UI's files are compressed at build time
//! (web/scripts/precompress.mjs) and picked here by `Accept-Encoding`; JSON
//! above [`MIN_COMPRESS`] bytes is gzipped by tower-http's `CompressionLayer`.

use std::fmt::Write as _;

use axum::body::{Body, Bytes};
use axum::extract::Request;
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use sha2::{Digest, Sha256};
use tower_http::compression::predicate::{Predicate, SizeAbove};

/// JSON bodies smaller than this go out as they are: below about a kilobyte
/// gzip saves a few hundred bytes at most, and costs a buffer and CPU.
pub const MIN_COMPRESS: u16 = 1024;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Coding {
    Brotli,
    Gzip,
}

impl Coding {
    /// The `Content-Encoding` token.
    pub fn token(self) -> &'static str {
        match self {
            Coding::Brotli => "br",
            Coding::Gzip => "gzip",
        }
    }

    /// The file name suffix the web build writes (`index-abc.js.br`).
    pub fn ext(self) -> &'static str {
        match self {
            Coding::Brotli => "br",
            Coding::Gzip => "gz",
        }
    }
}

/// The codings `headers` accepts, best first: highest q-value, and `br`
/// before `gzip` at equal q. A coding with `q=0`, or neither named nor
/// covered by `*`, is not accepted; no `Accept-Encoding` accepts none.
pub fn accepted(headers: &HeaderMap) -> Vec<Coding> {
    let mut q_br = None;
    let mut q_gzip = None;
    let mut q_any = None;
    for value in headers.get_all(header::ACCEPT_ENCODING) {
        let Ok(value) = value.to_str() else { continue };
        for item in value.split(',') {
            let mut parts = item.split(';');
            let name = parts.next().unwrap_or("").trim();
            let mut q = 1.0_f32;
            for param in parts {
                match param.split_once('=') {
                    // A q-value that does not parse is treated as a refusal.
                    Some((k, v)) if k.trim().eq_ignore_ascii_case("q") => {
                        q = v.trim().parse::<f32>().ok().filter(|q| (0.0..=1.0).contains(q)).unwrap_or(0.0);
                    }
                    _ => {}
                }
            }
            let slot = if name.eq_ignore_ascii_case("br") {
                &mut q_br
            } else if name.eq_ignore_ascii_case("gzip") || name.eq_ignore_ascii_case("x-gzip") {
                &mut q_gzip
            } else if name == "*" {
                &mut q_any
            } else {
                continue;
            };
            // Named twice: the more cautious value wins.
            *slot = Some(slot.map_or(q, |old: f32| old.min(q)));
        }
    }
    let mut out: Vec<(Coding, f32)> = [(Coding::Brotli, q_br), (Coding::Gzip, q_gzip)]
        .into_iter()
        .filter_map(|(c, q)| q.or(q_any).filter(|q| *q > 0.0).map(|q| (c, q)))
        .collect();
    // Stable: br stays ahead of gzip at the same q.
    out.sort_by(|a, b| b.1.total_cmp(&a.1));
    out.into_iter().map(|(c, _)| c).collect()
}

/// The strong ETag of a body: the first 128 bits of its SHA-256, in hex
/// (`"0f3a…"`). [`tag_per_coding`] appends `-br`/`-gzip` to the tag of a
/// compressed representation.
pub fn etag_for(sha256: &[u8]) -> HeaderValue {
    let mut s = String::with_capacity(34);
    s.push('"');
    for b in &sha256[..16] {
        let _ = write!(s, "{b:02x}");
    }
    s.push('"');
    HeaderValue::from_str(&s).expect("hex is a valid header value")
}

/// Whether the request's `If-None-Match` names `etag` (weak comparison, as
/// RFC 9110 asks for this header; a coding suffix is ignored, since every
/// coding of a body decodes to the same bytes).
pub fn none_match(headers: &HeaderMap, etag: &HeaderValue) -> bool {
    let Ok(ours) = etag.to_str() else { return false };
    let ours = ours.trim_matches('"');
    headers.get_all(header::IF_NONE_MATCH).iter().filter_map(|v| v.to_str().ok()).flat_map(|v| v.split(',')).any(
        |tag| {
            let tag = tag.trim();
            if tag == "*" {
                return true;
            }
            let tag = tag.strip_prefix("W/").unwrap_or(tag).trim_matches('"');
            let base = tag.split_once('-').map_or(tag, |(base, _)| base);
            base == ours
        },
    )
}

/// 304 Not Modified for a body whose ETag the client has: no body, the
/// validators and caching headers of the 200 it stands for.
pub fn not_modified(etag: HeaderValue, cache_control: HeaderValue) -> Response {
    let mut resp = StatusCode::NOT_MODIFIED.into_response();
    let h = resp.headers_mut();
    h.insert(header::ETAG, etag);
    h.insert(header::CACHE_CONTROL, cache_control);
    h.insert(header::VARY, HeaderValue::from_static("accept-encoding"));
    resp
}

/// Middleware for the list routes (`GET /api/containers` …): a strong ETag
/// of the JSON bytes, and 304 with no body when `If-None-Match` has it. The
/// handler still runs (the lists are built from memory or one query); what
/// is saved is the bytes on the wire. `private, no-cache`: a browser keeps
/// the list and revalidates it each time, a shared cache never stores it.
pub async fn etag_layer(req: Request, next: Next) -> Response {
    let conditional = matches!(*req.method(), Method::GET | Method::HEAD);
    let if_none_match = conditional.then(|| req.headers().clone());
    let resp = next.run(req).await;
    let Some(req_headers) = if_none_match else { return resp };
    if resp.status() != StatusCode::OK {
        return resp;
    }
    // Tagged by the handler already (a cached list): nothing to hash.
    if let Some(etag) = resp.headers().get(header::ETAG).cloned() {
        return match none_match(&req_headers, &etag) {
            true => not_modified(etag, HeaderValue::from_static("private, no-cache")),
            false => resp,
        };
    }
    let (mut parts, body) = resp.into_parts();
    // A JSON body is one buffer already: this only takes it.
    let bytes = match axum::body::to_bytes(body, usize::MAX).await {
        Ok(b) => b,
        Err(_) => return StatusCode::INTERNAL_SERVER_ERROR.into_response(),
    };
    let etag = etag_for(&Sha256::digest(&bytes));
    let cache = HeaderValue::from_static("private, no-cache");
    if none_match(&req_headers, &etag) {
        return not_modified(etag, cache);
    }
    parts.headers.insert(header::ETAG, etag);
    parts.headers.entry(header::CACHE_CONTROL).or_insert(cache);
    Response::from_parts(parts, Body::from(bytes))
}

/// Lists built from the in-memory view, serialised once per version of it
/// with their ETag: a refresh that finds nothing changed costs a lookup, not
/// a serialisation and a hash. Keys are a list and its host filter: only
/// known hosts get that far, so the map stays as small as the fleet.
#[derive(Default)]
pub struct ListCache(std::sync::Mutex<std::collections::HashMap<String, (u64, Bytes, HeaderValue)>>);

impl ListCache {
    /// The JSON response of list `key` at `generation`, built by `build` when
    /// not cached for it.
    pub fn respond<T: serde::Serialize>(&self, key: &str, generation: u64, build: impl FnOnce() -> T) -> Response {
        let cached = self.0.lock().unwrap_or_else(|e| e.into_inner()).get(key).filter(|c| c.0 == generation).cloned();
        let (bytes, etag) = match cached {
            Some((_, bytes, etag)) => (bytes, etag),
            None => {
                let bytes = Bytes::from(serde_json::to_vec(&build()).expect("lists serialise"));
                let etag = etag_for(&Sha256::digest(&bytes));
                self.0
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .insert(key.to_string(), (generation, bytes.clone(), etag.clone()));
                (bytes, etag)
            }
        };
        let mut resp = Response::new(Body::from(bytes));
        let h = resp.headers_mut();
        h.insert(header::CONTENT_TYPE, HeaderValue::from_static("application/json"));
        h.insert(header::ETAG, etag);
        h.insert(header::CACHE_CONTROL, HeaderValue::from_static("private, no-cache"));
        resp
    }
}

/// Outermost: a compressed response is a different representation, so its
/// strong ETag gets the coding appended (`"…-gzip"`, `"…-br"`);
/// [`none_match`] accepts either form.
pub async fn tag_per_coding(mut resp: Response) -> Response {
    let h = resp.headers_mut();
    let coding = h.get(header::CONTENT_ENCODING).and_then(|v| v.to_str().ok());
    let base = h.get(header::ETAG).and_then(|v| v.to_str().ok()).and_then(|t| t.strip_prefix('"')?.strip_suffix('"'));
    let tagged = match (coding, base) {
        (Some(coding), Some(base)) if !base.contains('-') => {
            HeaderValue::from_str(&format!("\"{base}-{coding}\"")).ok()
        }
        _ => None,
    };
    if let Some(v) = tagged {
        h.insert(header::ETAG, v);
    }
    resp
}

/// Which responses `CompressionLayer` compresses: JSON of at least
/// [`MIN_COMPRESS`] bytes. Nothing else: the UI's files come precompressed,
/// and the event stream (`text/event-stream`) must reach the browser event
/// by event, never held in a compressor's buffer.
pub fn compress_when() -> impl Predicate {
    SizeAbove::new(MIN_COMPRESS).and(
        |_: StatusCode, _: axum::http::Version, h: &HeaderMap, _: &axum::http::Extensions| {
            h.get(header::CONTENT_TYPE)
                .and_then(|v| v.to_str().ok())
                .is_some_and(|ct| ct.starts_with("application/json"))
        },
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn with(name: header::HeaderName, v: &str) -> HeaderMap {
        let mut h = HeaderMap::new();
        h.insert(name, HeaderValue::from_str(v).unwrap());
        h
    }

    fn acc(v: &str) -> Vec<Coding> {
        accepted(&with(header::ACCEPT_ENCODING, v))
    }

    #[test]
    fn accept_encoding_picks_br_then_gzip_and_respects_q() {
        use Coding::*;
        assert_eq!(accepted(&HeaderMap::new()), vec![]);
        assert_eq!(acc(""), vec![]);
        assert_eq!(acc("identity"), vec![]);
        assert_eq!(acc("gzip, deflate, br, zstd"), vec![Brotli, Gzip]);
        assert_eq!(acc("gzip"), vec![Gzip]);
        assert_eq!(acc("x-gzip"), vec![Gzip]);
        assert_eq!(acc("BR"), vec![Brotli]);
        assert_eq!(acc("br;q=0, gzip"), vec![Gzip]);
        assert_eq!(acc("br; q=0.000, gzip;q=0"), vec![]);
        assert_eq!(acc("br;q=0.5, gzip;q=0.8"), vec![Gzip, Brotli]);
        assert_eq!(acc("*"), vec![Brotli, Gzip]);
        assert_eq!(acc("*;q=0"), vec![]);
        assert_eq!(acc("gzip, *;q=0"), vec![Gzip]);
        assert_eq!(acc("br;q=nonsense, gzip"), vec![Gzip]);
        assert_eq!(acc("br;q=2, gzip"), vec![Gzip]);
        assert_eq!(acc("br, br;q=0"), vec![]);
    }

    #[test]
    fn if_none_match_compares_weakly_and_ignores_the_coding_suffix() {
        let tag = etag_for(&[0xab; 32]);
        let hex = "ab".repeat(16);
        assert_eq!(tag.to_str().unwrap(), format!("\"{hex}\""));
        for inm in [
            format!("\"{hex}\""),
            format!("W/\"{hex}\""),
            format!("\"{hex}-gzip\""),
            format!("\"x\", \"{hex}-br\""),
            "*".into(),
        ] {
            assert!(none_match(&with(header::IF_NONE_MATCH, &inm), &tag), "{inm}");
        }
        for inm in ["\"ab\"", "\"\"", &format!("\"{hex}0\"")] {
            assert!(!none_match(&with(header::IF_NONE_MATCH, inm), &tag), "{inm}");
        }
        assert!(!none_match(&HeaderMap::new(), &tag));
    }
}
