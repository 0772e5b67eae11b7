//! The server's guards: the per-process form token, the Host check against DNS rebinding,
//! the same-origin check of POSTs, and the headers that forbid framing.

use std::hash::{BuildHasher, Hasher};
use std::sync::Arc;

use axum::extract::{Request, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use missive::config::hex;
use sha2::{Digest, Sha256};

use super::{AppError, AppState};

/// A random token for this process: two randomly keyed SipHash outputs, hashed.
pub(super) fn new_token() -> String {
    let mut hasher = Sha256::new();
    for i in 0..2u8 {
        let mut h = std::collections::hash_map::RandomState::new().build_hasher();
        h.write_u8(i);
        hasher.update(h.finish().to_le_bytes());
    }
    hasher.update(std::process::id().to_le_bytes());
    hex(&hasher.finalize())
}

/// The Content-Security-Policy of every response: only this server's own resources (the
/// page images), the pages' inline `<style>`, forms posting back here, and no framing.
pub(crate) const CSP: &str = "default-src 'self'; style-src 'self' 'unsafe-inline'; \
     frame-ancestors 'none'; form-action 'self'; base-uri 'none'";

/// Every response (errors and refusals too) forbids framing, so another site cannot
/// overlay the Approve button (clickjacking).
pub(super) async fn no_framing(mut response: Response) -> Response {
    let headers = response.headers_mut();
    headers.insert(
        header::X_FRAME_OPTIONS,
        header::HeaderValue::from_static("DENY"),
    );
    headers.insert(
        header::CONTENT_SECURITY_POLICY,
        header::HeaderValue::from_static(CSP),
    );
    headers.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        header::HeaderValue::from_static("nosniff"),
    );
    response
}

/// Refuses requests whose `Host` is not this server (a DNS-rebinding page would send its
/// own name).
pub(super) async fn only_local_hosts(
    State(state): State<Arc<AppState>>,
    request: Request,
    next: Next,
) -> Response {
    let host = request
        .headers()
        .get(header::HOST)
        .and_then(|h| h.to_str().ok())
        .unwrap_or("");
    if state
        .origins
        .iter()
        .any(|o| o.ends_with(&format!("//{host}")))
    {
        next.run(request).await
    } else {
        AppError::new(StatusCode::FORBIDDEN, format!("unexpected Host `{host}`")).into_response()
    }
}

/// Whether the request comes from a page of this server: the form token must match, and
/// an Origin (or, without one, a Referer) the browser sent must be this server's.
pub(super) fn same_origin(
    state: &AppState,
    headers: &HeaderMap,
    token: &str,
) -> Result<(), AppError> {
    let forbidden = |why: &str| AppError::new(StatusCode::FORBIDDEN, why.to_owned());
    if token != state.token {
        return Err(forbidden(
            "the form's token is not this server's (reload the page and approve again)",
        ));
    }
    let header = |name| headers.get(name).and_then(|v| v.to_str().ok());
    let ours = |url: &str| {
        state
            .origins
            .iter()
            .any(|o| url == o || url.starts_with(&format!("{o}/")))
    };
    match (header(header::ORIGIN), header(header::REFERER)) {
        (Some(origin), _) if !ours(origin) => Err(forbidden("cross-origin request refused")),
        (None, Some(referer)) if !ours(referer) => Err(forbidden("cross-site request refused")),
        _ => Ok(()),
    }
}
