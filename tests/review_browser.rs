//! `missive serve` in a real headless browser: Debian's chromium loads the pages
//! (`--dump-dom`, `--screenshot`) from a server started as a child process on a free
//! loopback port. The approve POST goes through a plain HTTP client (chromium's headless
//! modes cannot submit a form without JavaScript), carrying the form's hidden fields as
//! the browser would.
//!
//! Needs `chromium` on PATH (`apt-get install -y chromium`; `.ci/run` installs it).
//! Screenshots are kept in `$CARGO_TARGET_TMPDIR/review-browser/` for people to look at.

mod common;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use common::{Fixture, root};

/// A `missive serve` child process, killed on drop.
struct Server {
    child: Child,
    port: u16,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Server {
    /// Starts `missive serve --port 0` on the fixture's templates and ledger, and reads the
    /// port it bound from its first line.
    fn start(dir: &Path) -> Server {
        Server::start_on(dir, dir.join("missive.db").as_os_str())
    }

    /// [`Server::start`] on the ledger `ledger` (a SQLite file or a PostgreSQL URL).
    fn start_on(dir: &Path, ledger: &std::ffi::OsStr) -> Server {
        let mut child = Command::new(env!("CARGO_BIN_EXE_missive"))
            .current_dir(root())
            .args(["serve", "--port", "0", "--ledger"])
            .arg(ledger)
            .arg("--templates")
            .arg(dir.join("templates"))
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("start missive serve");
        let stderr = child.stderr.take().expect("stderr");
        let (send, receive) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                let _ = send.send(line);
            }
        });
        let line = receive
            .recv_timeout(Duration::from_secs(30))
            .expect("missive serve printed where it listens");
        let port = line
            .split("http://127.0.0.1:")
            .nth(1)
            .and_then(|rest| rest.split('/').next())
            .and_then(|port| port.parse().ok())
            .unwrap_or_else(|| panic!("no port in `{line}`"));
        Server { child, port }
    }

    fn url(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}{path}", self.port)
    }

    /// `GET src` (a page image's address): the PNG, after checking status and type.
    fn png(&self, src: &str) -> Vec<u8> {
        let (status, headers, png) = http(
            self.port,
            &format!(
                "GET {src} HTTP/1.1\r\nHost: 127.0.0.1:{}\r\nConnection: close\r\n\r\n",
                self.port
            ),
            b"",
        );
        assert_eq!(status, 200, "{src}");
        assert_eq!(header(&headers, "content-type"), Some("image/png"), "{src}");
        assert!(png.starts_with(b"\x89PNG"), "{src}");
        png
    }

    /// Posts an approve `form` for `kind` from this server's origin, as the page's form
    /// would; returns the status and the `Location`.
    fn approve(&self, kind: &str, form: &str) -> (u16, Option<String>) {
        let (status, headers, _) = http(
            self.port,
            &format!(
                "POST /{kind}/approve HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n\
                 Origin: http://127.0.0.1:{port}\r\nContent-Type: application/x-www-form-urlencoded\r\n\
                 Content-Length: {}\r\nConnection: close\r\n\r\n",
                form.len(),
                port = self.port
            ),
            form.as_bytes(),
        );
        (status, header(&headers, "location").map(str::to_owned))
    }
}

/// The chromium binary, or a failure saying how to install it.
fn chromium() -> PathBuf {
    for name in ["chromium", "chromium-browser"] {
        if let Ok(path) = which(name) {
            return path;
        }
    }
    panic!("this test drives Debian's chromium: `apt-get install -y chromium`");
}

fn which(name: &str) -> Result<PathBuf, ()> {
    let path = std::env::var_os("PATH").ok_or(())?;
    std::env::split_paths(&path)
        .map(|dir| dir.join(name))
        .find(|p| p.is_file())
        .ok_or(())
}

/// Runs headless chromium with `args` and the URL; returns stdout. Each call has its own
/// profile directory; a hung browser is killed after 90 s.
fn browse(extra: &[&str], url: &str) -> String {
    let profile = tempfile::tempdir().expect("profile dir");
    let mut child = Command::new(chromium())
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-quic",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
        ])
        .arg(format!("--user-data-dir={}", profile.path().display()))
        .args(extra)
        .arg(url)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("start chromium");
    let mut stdout = child.stdout.take().expect("stdout");
    let reader = std::thread::spawn(move || {
        let mut out = String::new();
        let _ = stdout.read_to_string(&mut out);
        out
    });
    let started = Instant::now();
    loop {
        if let Some(status) = child.try_wait().expect("wait for chromium") {
            assert!(status.success(), "chromium failed on {url}: {status}");
            break;
        }
        if started.elapsed() > Duration::from_secs(90) {
            let _ = child.kill();
            let _ = child.wait();
            panic!("chromium hung on {url}");
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    reader.join().expect("read chromium output")
}

/// The DOM chromium built for `url`, serialized.
fn dom(url: &str) -> String {
    let dom = browse(&["--dump-dom"], url);
    assert!(dom.contains("</html>"), "no document from {url}:\n{dom}");
    dom
}

/// A screenshot of `url` saved as `name` under the target tmp dir; returns its path.
fn screenshot(url: &str, name: &str) -> PathBuf {
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join("review-browser");
    std::fs::create_dir_all(&dir).expect("screenshot dir");
    let path = dir.join(name);
    let _ = std::fs::remove_file(&path);
    browse(
        &[
            &format!("--screenshot={}", path.display()),
            "--window-size=1200,1800",
            "--hide-scrollbars",
        ],
        url,
    );
    let png = std::fs::read(&path).expect("chromium wrote the screenshot");
    assert!(png.starts_with(b"\x89PNG") && png.len() > 10_000, "{name}");
    path
}

/// A plain HTTP/1.1 request; returns status, headers (lower-case names) and body.
fn http(port: u16, request: &str, body: &[u8]) -> (u16, Vec<(String, String)>, Vec<u8>) {
    let mut stream = TcpStream::connect(("127.0.0.1", port)).expect("connect");
    stream
        .set_read_timeout(Some(Duration::from_secs(60)))
        .expect("timeout");
    stream.write_all(request.as_bytes()).expect("send");
    stream.write_all(body).expect("send body");
    let mut response = Vec::new();
    stream.read_to_end(&mut response).expect("read response");
    let split = response
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .expect("end of headers");
    let head = String::from_utf8_lossy(&response[..split]).into_owned();
    let mut lines = head.lines();
    let status = lines
        .next()
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|s| s.parse().ok())
        .expect("status line");
    let headers = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(n, v)| (n.trim().to_ascii_lowercase(), v.trim().to_owned()))
        .collect();
    (status, headers, response[split + 4..].to_vec())
}

fn header<'a>(headers: &'a [(String, String)], name: &str) -> Option<&'a str> {
    headers
        .iter()
        .find(|(n, _)| n == name)
        .map(|(_, v)| v.as_str())
}

/// The value of `attribute` on the element (start tag) whose text contains `marker`.
fn attribute(dom: &str, marker: &str, attribute: &str) -> String {
    let at = dom
        .find(marker)
        .unwrap_or_else(|| panic!("no `{marker}` in:\n{dom}"));
    let start = dom[..at].rfind('<').expect("tag start");
    let end = at + dom[at..].find('>').expect("tag end");
    let tag = &dom[start..end];
    let key = format!("{attribute}=\"");
    let value = tag
        .split(&key)
        .nth(1)
        .and_then(|rest| rest.split('"').next())
        .unwrap_or_else(|| panic!("no {attribute} in `{tag}`"));
    value.replace("&amp;", "&")
}

/// The `data-state` of a letter type's row on the index.
fn row_state(dom: &str, row: &str) -> String {
    let line = dom
        .lines()
        .find(|l| l.contains(&format!("id=\"row-{row}\"")))
        .unwrap_or_else(|| panic!("no row `{row}` in:\n{dom}"));
    attribute(line, "data-state=", "data-state")
}

/// Percent-encodes a form value.
fn form_value(text: &str) -> String {
    text.bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() {
                char::from(b).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect()
}

#[test]
fn reviewer_sees_letters_approves_and_edits_in_a_real_browser() {
    let fixture = Fixture::empty();
    let templates = fixture.join("templates");
    copy_templates(&root().join("templates"), &templates);
    let server = Server::start(fixture.path());

    // The index lists every kind and variant, none approved.
    let index = dom(&server.url("/"));
    let rows = [
        "intent_to_offset",
        "offset_notice-federal",
        "offset_notice-state",
        "refund-excess_offset",
        "refund-late_return",
        "review_outcome-upheld",
        "review_outcome-reduced",
        "review_outcome-reversed",
    ];
    for row in rows {
        assert_eq!(row_state(&index, row), "not_approved", "{row}");
    }
    screenshot(&server.url("/"), "index-before.png");

    // A letter page shows the letter's pages as images the server serves as PNG.
    let page = dom(&server.url("/intent_to_offset"));
    let src = attribute(&page, "src=\"/intent_to_offset/page/1.png", "src");
    assert!(src.contains("account=CT-0001001"), "{src}");
    assert!(
        page.contains("/intent_to_offset/page/2.png"),
        "a two-page letter"
    );
    server.png(&src);
    screenshot(
        &server.url("/intent_to_offset"),
        "letter-intent_to_offset.png",
    );

    // Approve with the form's hidden fields, from this origin.
    let token = attribute(&page, "name=\"token\"", "value");
    let sha = attribute(&page, "name=\"sha256\"", "value");
    let form = format!(
        "reviewer={}&note={}&sha256={sha}&token={token}&back=intent_to_offset",
        form_value("Browser Test"),
        form_value("looked at every page")
    );
    assert_eq!(
        server.approve("intent_to_offset", &form),
        (303, Some("/intent_to_offset".to_owned()))
    );
    let index = dom(&server.url("/"));
    assert_eq!(row_state(&index, "intent_to_offset"), "approved");
    assert!(index.contains("Browser Test"));
    assert_eq!(row_state(&index, "refund-late_return"), "not_approved");
    let page = dom(&server.url("/intent_to_offset"));
    assert_eq!(
        attribute(&page, "id=\"state-en\"", "data-state"),
        "approved"
    );
    // The Spanish template of the same kind is a separate approval.
    assert_eq!(
        attribute(&page, "id=\"state-es\"", "data-state"),
        "not_approved"
    );

    // Editing the template file on disk: the next load shows it as not approved, with the
    // change in the diff (escaped, like everything else).
    let file = templates.join("letters/intent_to_offset.typ.tera");
    let mut text = std::fs::read_to_string(&file).expect("read template");
    text.push_str("\n// Reviewed wording <script>alert(1)</script>\n");
    std::fs::write(&file, text).expect("edit template");
    let index = dom(&server.url("/"));
    assert_eq!(row_state(&index, "intent_to_offset"), "changed");
    assert!(index.contains("not approved: changed since approval"));
    let page = dom(&server.url("/intent_to_offset"));
    assert_eq!(attribute(&page, "id=\"state-en\"", "data-state"), "changed");
    assert!(
        page.contains("+// Reviewed wording &lt;script&gt;alert(1)&lt;/script&gt;"),
        "the diff shows the new line as text:\n{page}"
    );
    assert!(!page.contains("<script"), "no script element in the DOM");
    screenshot(&server.url("/intent_to_offset"), "letter-changed.png");
}

/// The `data-state` of one language's cell in a letter type's row on the index.
fn row_state_in(dom: &str, row: &str, lang: &str) -> String {
    let line = dom
        .lines()
        .find(|l| l.contains(&format!("id=\"row-{row}\"")))
        .unwrap_or_else(|| panic!("no row `{row}` in:\n{dom}"));
    attribute(line, &format!("data-lang=\"{lang}\""), "data-state")
}

/// The state `missive approve --list` prints for `template`.
fn listed_state(dir: &Path, template: &str) -> String {
    let ledger = dir.join("missive.db");
    let templates = dir.join("templates");
    let run = common::missive(&[
        "approve",
        "--list",
        "--ledger",
        ledger.to_str().expect("utf-8 path"),
        "--templates",
        templates.to_str().expect("utf-8 path"),
    ]);
    run.expect_code(0);
    let line = run
        .stdout
        .lines()
        .find(|l| l.split_whitespace().next() == Some(template))
        .unwrap_or_else(|| panic!("no `{template}` in:\n{}", run.stdout));
    line[template.len()..]
        .trim()
        .rsplit_once(' ')
        .map(|(state, _version)| state.trim().to_owned())
        .unwrap_or_default()
}

/// A letter page shows the same sample letter in English and in Spanish side by side, each
/// with its own state and Approve form; approving the Spanish column approves the Spanish
/// template only.
#[test]
fn letter_page_shows_both_languages_and_approves_each_on_its_own() {
    let fixture = Fixture::empty();
    let templates = fixture.join("templates");
    copy_templates(&root().join("templates"), &templates);
    let server = Server::start(fixture.path());

    let page = dom(&server.url("/refund/late_return"));
    for lang in ["en", "es"] {
        assert!(
            page.contains(&format!("id=\"lang-{lang}\"")),
            "no {lang} column:\n{page}"
        );
        assert_eq!(
            attribute(&page, &format!("id=\"state-{lang}\""), "data-state"),
            "not_approved"
        );
    }
    // Both columns show the same account's letter, each in its language (alt text and
    // column labels), and each column's images are that language's rendering.
    let account = attribute(&page, "selected", "value");
    for alt in [
        "alt=\"Page 1 of ".to_owned(),
        format!(" letter in English for account {account}\""),
        "alt=\"Página 1 de ".to_owned(),
        format!(" en español para la cuenta {account}\""),
    ] {
        assert!(page.contains(&alt), "no `{alt}` in:\n{page}");
    }
    let en_src = attribute(&page, "in English for account", "src");
    let es_src = attribute(&page, "en español para la cuenta", "src");
    assert!(en_src.contains(&format!("account={account}")), "{en_src}");
    assert!(es_src.contains(&format!("account={account}")), "{es_src}");
    assert!(es_src.ends_with("lang=es"), "{es_src}");
    assert!(page.contains("Carta en español") && page.contains("English letter"));
    assert_ne!(
        server.png(&en_src),
        server.png(&es_src),
        "the Spanish column shows another rendering"
    );
    let shot = screenshot(
        &server.url("/refund/late_return"),
        "letter-both-languages.png",
    );
    assert!(shot.is_file());

    // Approve with the Spanish form's hidden fields.
    let es_form = &page[page.find("id=\"approve-es\"").expect("Spanish form")..];
    let token = attribute(es_form, "name=\"token\"", "value");
    let sha = attribute(es_form, "name=\"sha256\"", "value");
    assert_eq!(attribute(es_form, "name=\"language\"", "value"), "es");
    let en_sha = attribute(&page, "name=\"sha256\"", "value");
    assert_ne!(sha, en_sha, "each column approves its own template version");
    let form = format!(
        "reviewer={}&note={}&sha256={sha}&token={token}&language=es&back=refund%2Flate_return",
        form_value("Revisora Legal"),
        form_value("revisé cada página")
    );
    assert_eq!(
        server.approve("refund", &form),
        (303, Some("/refund/late_return".to_owned()))
    );

    // Only the Spanish state changed: on the page, the index and `approve --list`.
    let page = dom(&server.url("/refund/late_return"));
    assert_eq!(
        attribute(&page, "id=\"state-es\"", "data-state"),
        "approved"
    );
    assert_eq!(
        attribute(&page, "id=\"state-en\"", "data-state"),
        "not_approved"
    );
    assert!(page.contains("Revisora Legal"));
    let index = dom(&server.url("/"));
    assert_eq!(
        row_state_in(&index, "refund-excess_offset", "es"),
        "approved"
    );
    assert_eq!(
        row_state_in(&index, "refund-excess_offset", "en"),
        "not_approved"
    );
    assert_eq!(
        row_state_in(&index, "intent_to_offset", "es"),
        "not_approved"
    );
    assert_eq!(
        listed_state(fixture.path(), "letters/es/refund.typ.tera"),
        "approved"
    );
    assert_eq!(
        listed_state(fixture.path(), "letters/refund.typ.tera"),
        "not approved"
    );
}

fn copy_templates(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).expect("mkdir");
    for entry in std::fs::read_dir(from).expect("read templates") {
        let entry = entry.expect("entry");
        let target = to.join(entry.file_name());
        if entry.file_type().expect("type").is_dir() {
            copy_templates(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), &target).expect("copy");
        }
    }
}

/// Every response of `serve` (pages, page images, refusals, unknown paths) forbids being
/// framed by another site and limits what a page may load to the server itself.
#[test]
fn every_response_forbids_framing() {
    let fixture = Fixture::empty();
    let templates = fixture.join("templates");
    copy_templates(&root().join("templates"), &templates);
    let server = Server::start(fixture.path());
    let port = server.port;
    let get = |path: &str, host: &str| {
        http(
            port,
            &format!("GET {path} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n"),
            b"",
        )
    };
    let local = format!("127.0.0.1:{port}");
    let post = format!(
        "POST /intent_to_offset/approve HTTP/1.1\r\nHost: {local}\r\nOrigin: http://{local}\r\n\
         Content-Type: application/x-www-form-urlencoded\r\nContent-Length: 5\r\n\
         Connection: close\r\n\r\n"
    );
    let responses = [
        ("index", get("/", &local)),
        ("letter page", get("/intent_to_offset", &local)),
        (
            "page image",
            get("/intent_to_offset/page/1.png?account=CT-0001001", &local),
        ),
        (
            "Spanish page image",
            get(
                "/intent_to_offset/page/1.png?account=CT-0001001&lang=es",
                &local,
            ),
        ),
        ("unknown kind", get("/no_such_kind", &local)),
        ("foreign Host", get("/", "evil.example")),
        ("approve without token", http(port, &post, b"x=1&y")),
    ];
    let expected = [200, 200, 200, 200, 404, 403, 0];
    for ((what, (status, headers, _)), want) in responses.iter().zip(expected) {
        if want != 0 {
            assert_eq!(*status, want, "{what}");
        }
        assert_eq!(header(headers, "x-frame-options"), Some("DENY"), "{what}");
        let csp = header(headers, "content-security-policy")
            .unwrap_or_else(|| panic!("{what}: no Content-Security-Policy"));
        for directive in ["default-src 'self'", "frame-ancestors 'none'"] {
            assert!(csp.contains(directive), "{what}: {csp}");
        }
    }
    assert_eq!(
        header(&responses[2].1.1, "content-type"),
        Some("image/png"),
        "the page image is still served"
    );
}

/// The review app on a PostgreSQL ledger: the browser shows the letter, the approval made
/// through the page's form is recorded on the server (read back through the library), and
/// the index shows it approved.
#[test]
fn reviewer_approves_in_a_real_browser_on_a_postgres_ledger() {
    let Some(db) = common::pg::fresh_database("reviewer_approves_on_postgres") else {
        return;
    };
    let fixture = Fixture::empty();
    copy_templates(&root().join("templates"), &fixture.join("templates"));
    let server = Server::start_on(fixture.path(), std::ffi::OsStr::new(&db.url));
    let page = dom(&server.url("/intent_to_offset"));
    let token = attribute(&page, "name=\"token\"", "value");
    let sha = attribute(&page, "name=\"sha256\"", "value");
    let form = format!(
        "reviewer={}&note={}&sha256={sha}&token={token}&back=intent_to_offset",
        form_value("Browser Test"),
        form_value("on the shared ledger")
    );
    assert_eq!(
        server.approve("intent_to_offset", &form),
        (303, Some("/intent_to_offset".to_owned()))
    );
    let index = dom(&server.url("/"));
    assert_eq!(row_state(&index, "intent_to_offset"), "approved");
    let missive::ledger::Location::Postgres(location) =
        missive::ledger::Location::parse(&db.url, None).expect("a PostgreSQL URL")
    else {
        panic!("`{}` is a PostgreSQL URL", db.url);
    };
    let ledger = missive::ledger::PgLedger::open(&location).expect("open the ledger");
    let approvals = missive::ledger::ApprovalLog::approvals(&ledger, None).expect("approvals");
    assert_eq!(approvals.len(), 1);
    assert_eq!(
        (
            approvals[0].reviewer.as_str(),
            approvals[0].template_sha256.as_str()
        ),
        ("Browser Test", sha.as_str())
    );
}
