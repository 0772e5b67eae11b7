//! The server's guards: the per-process form token, the Host check against DNS rebinding,
//! the same-origin check of POSTs, and the headers that forbid framing.

use std::sync::Arc;

use axum::extract::{Request, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use missive::config::hex;

use super::{AppError, AppState};

/// A random token for this process: 32 bytes from the operating system's random number
/// generator, in hex. The RNG failing is an error (the server does not start), never a
/// weaker token.
pub(super) fn new_token() -> Result<String, getrandom::Error> {
    let mut bytes = [0u8; 32];
    getrandom::fill(&mut bytes)?;
    Ok(hex(&bytes))
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
