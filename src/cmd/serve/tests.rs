//! The web app driven in-process (`app(state).oneshot(request)`): routes, escaping, the
//! approve form's guards. The real-browser test is `tests/review_browser.rs`.

use std::path::Path;

use axum::body::{Body, to_bytes};
use axum::http::{Request, StatusCode, header};
use missive::config::{BUILT_IN, Config};
use tower::ServiceExt;

use super::*;

const PORT: u16 = 40999;
const HOST: &str = "127.0.0.1:40999";

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).expect("mkdir");
    for entry in std::fs::read_dir(from).expect("read dir") {
        let entry = entry.expect("entry");
        let target = to.join(entry.file_name());
        if entry.file_type().expect("type").is_dir() {
            copy_dir(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), &target).expect("copy");
        }
    }
}

/// A state over a copy of the templates and one sample account whose name is markup.
fn state(dir: &Path) -> Arc<AppState> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    copy_dir(&root.join("templates"), &dir.join("templates"));
    std::fs::create_dir_all(dir.join("accounts")).expect("mkdir");
    let account =
        std::fs::read_to_string(root.join("samples/accounts/01-ito-basic.json")).expect("sample");
    let account: serde_json::Value = serde_json::from_str(&account).expect("json");
    let mut account = account;
    account["taxpayer"]["name"] = "<script>alert(1)</script>".into();
    std::fs::write(
        dir.join("accounts/evil.json"),
        serde_json::to_vec(&account).expect("json"),
    )
    .expect("write");
    let config = Config::parse(BUILT_IN).expect("config");
    let path = dir.join("missive.db");
    let ledger: missive::ledger::AnyLedger =
        Box::new(missive::ledger::SqliteLedger::open(&path).expect("ledger"));
    Arc::new(
        AppState::new(
            config,
            Paths {
                templates: dir.join("templates"),
                fonts: root.join("fonts"),
                accounts: dir.join("accounts"),
            },
            sample_as_of(),
            (ledger, path.display().to_string()),
            PORT,
        )
        .expect("state"),
    )
}

async fn get(state: &Arc<AppState>, uri: &str) -> (StatusCode, String, Vec<u8>) {
    let request = Request::get(uri)
        .header(header::HOST, HOST)
        .body(Body::empty())
        .expect("request");
    let response = app(state.clone()).oneshot(request).await.expect("response");
    let status = response.status();
    let kind = response
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_owned();
    let body = to_bytes(response.into_body(), usize::MAX)
        .await
        .expect("body")
        .to_vec();
    (status, kind, body)
}

async fn post(state: &Arc<AppState>, uri: &str, origin: Option<&str>, form: &str) -> StatusCode {
    let mut request = Request::post(uri)
        .header(header::HOST, HOST)
        .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded");
    if let Some(origin) = origin {
        request = request.header(header::ORIGIN, origin);
    }
    let request = request.body(Body::from(form.to_owned())).expect("request");
    app(state.clone())
        .oneshot(request)
        .await
        .expect("response")
        .status()
}

fn text(body: &[u8]) -> String {
    String::from_utf8(body.to_vec()).expect("utf-8")
}

#[tokio::test]
async fn index_escapes_and_letter_page_shows_pages() {
    let dir = tempfile::tempdir().expect("tempdir");
    let state = state(dir.path());
    let template = dir
        .path()
        .join("templates/letters/intent_to_offset.typ.tera");
    let mut source = std::fs::read_to_string(&template).expect("read");
    source.push_str("\n// <script>alert(2)</script>\n");
    std::fs::write(&template, source).expect("write");

    let (status, _, body) = get(&state, "/").await;
    assert_eq!(status, StatusCode::OK);
    let index = text(&body);
    assert!(index.contains("id=\"row-intent_to_offset\""), "{index}");
    assert!(index.contains("data-state=\"not_approved\""));

    let (status, _, body) = get(&state, "/intent_to_offset").await;
    assert_eq!(status, StatusCode::OK);
    let page = text(&body);
    assert!(!page.contains("<script>"), "unescaped markup:\n{page}");
    assert!(page.contains("&lt;script&gt;alert(2)&lt;/script&gt;"));
    assert!(page.contains("&lt;script&gt;alert(1)&lt;/script&gt;"));
    assert!(page.contains("<img src=\"/intent_to_offset/page/1.png?account="));
    assert!(page.contains("<code>letter.deadline</code>"));
    assert!(
        page.contains("<img src=\"/intent_to_offset/page/1.png?account=CT-0001001&amp;lang=es\"")
    );
    assert!(page.contains("id=\"approve-en\"") && page.contains("id=\"approve-es\""));
    assert!(page.contains("<code>letters/es/intent_to_offset.typ.tera</code>"));

    let (status, kind, png) = get(&state, "/intent_to_offset/page/1.png").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(kind, "image/png");
    assert!(png.starts_with(b"\x89PNG"));
    let (status, kind, spanish) = get(&state, "/intent_to_offset/page/1.png?lang=es").await;
    assert_eq!((status, kind.as_str()), (StatusCode::OK, "image/png"));
    assert_ne!(png, spanish, "the Spanish template's page");
    let (status, _, _) = get(&state, "/intent_to_offset/page/1.png?lang=fr").await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let (status, _, _) = get(&state, "/intent_to_offset/page/99.png").await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    // The only sample account has no refund letter: the page says so.
    let (status, _, body) = get(&state, "/refund/late_return").await;
    assert_eq!(status, StatusCode::OK);
    assert!(text(&body).contains("id=\"problem\""));
    let (status, _, _) = get(&state, "/nonsense").await;
    assert_eq!(status, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn approving_needs_the_token_our_origin_and_the_version_seen() {
    let dir = tempfile::tempdir().expect("tempdir");
    let state = state(dir.path());
    let composer = state.composer().expect("templates");
    let sha = composer.template_hashes()["letters/refund.typ.tera"].clone();
    let token = state.token.clone();
    let form = |token: &str, sha: &str| {
        format!("reviewer=Pat+Lee&note=ok&sha256={sha}&token={token}&back=refund%2Flate_return")
    };

    let ours = Some("http://127.0.0.1:40999");
    assert_eq!(
        post(&state, "/refund/approve", ours, &form("wrong", &sha)).await,
        StatusCode::FORBIDDEN
    );
    assert_eq!(
        post(
            &state,
            "/refund/approve",
            Some("http://evil.example"),
            &form(&token, &sha)
        )
        .await,
        StatusCode::FORBIDDEN
    );
    assert_eq!(
        post(&state, "/refund/approve", ours, &form(&token, "0000")).await,
        StatusCode::CONFLICT
    );
    let (_, _, body) = get(&state, "/").await;
    assert!(!text(&body).contains("data-state=\"approved\""));

    assert_eq!(
        post(&state, "/refund/approve", ours, &form(&token, &sha)).await,
        StatusCode::SEE_OTHER
    );
    let (_, _, body) = get(&state, "/").await;
    let index = text(&body);
    let row = index
        .lines()
        .find(|l| l.contains("id=\"row-refund-late_return\""))
        .expect("refund row");
    assert!(row.contains("data-state=\"approved\""), "{row}");
    assert!(row.contains("Pat Lee"), "{row}");

    // The English approval left the Spanish template unapproved; a Spanish form needs the
    // Spanish version, and a language missive has no letters in is refused.
    let row_es = |index: &str| {
        let row = index
            .lines()
            .find(|l| l.contains("id=\"row-refund-late_return\""))
            .expect("refund row")
            .to_owned();
        row[row.find("data-lang=\"es\"").expect("Spanish cell")..].to_owned()
    };
    assert!(row_es(&index).starts_with("data-lang=\"es\" data-state=\"not_approved\""));
    let es_sha = composer.template_hashes()["letters/es/refund.typ.tera"].clone();
    let spanish = |lang: &str, sha: &str| format!("{}&language={lang}", form(&token, sha));
    assert_eq!(
        post(&state, "/refund/approve", ours, &spanish("es", &sha)).await,
        StatusCode::CONFLICT
    );
    assert_eq!(
        post(&state, "/refund/approve", ours, &spanish("fr", &es_sha)).await,
        StatusCode::BAD_REQUEST
    );
    assert_eq!(
        post(&state, "/refund/approve", ours, &spanish("es", &es_sha)).await,
        StatusCode::SEE_OTHER
    );
    let (_, _, body) = get(&state, "/").await;
    assert!(row_es(&text(&body)).starts_with("data-lang=\"es\" data-state=\"approved\""));
    let approvals = state
        .ledger()
        .expect("ledger")
        .approvals(None)
        .expect("list");
    let templates: Vec<&str> = approvals.iter().map(|a| a.template.as_str()).collect();
    assert_eq!(
        templates,
        ["letters/refund.typ.tera", "letters/es/refund.typ.tera"]
    );

    // A request for another host is refused (DNS rebinding).
    let request = Request::get("/")
        .header(header::HOST, "evil.example:40999")
        .body(Body::empty())
        .expect("request");
    let response = app(state.clone()).oneshot(request).await.expect("response");
    assert_eq!(response.status(), StatusCode::FORBIDDEN);
}
