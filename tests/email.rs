//! Email dispatch against a REAL SMTP server process (`tests/smtp/server.py`, aiosmtpd) on
//! a loopback port: messages are parsed back and checked, and the server is told to
//! misbehave (drop the connection after DATA, 421, 451 once, 550, hang) to check that every
//! letter is delivered at most once, and exactly once when the server lets it.

mod common;

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use common::{Run, root};
use missive::ledger::prelude::*;
use missive::ledger::{LetterState, SqliteLedger};
use missive::letter::LetterKey;
use serde_json::Value;
use tempfile::TempDir;

/// A Python that has aiosmtpd, or `None` (then the test is skipped, except in CI, where
/// `.ci/run` installs it and sets MISSIVE_REQUIRE_VALIDATORS).
fn python() -> Option<PathBuf> {
    let mut candidates = Vec::new();
    if let Some(home) = std::env::var_os("HOME") {
        candidates.push(PathBuf::from(home).join(".cache/missive-venv/bin/python3"));
    }
    candidates.push(PathBuf::from("python3"));
    let found = candidates.into_iter().find(|python| {
        Command::new(python)
            .args(["-c", "import aiosmtpd"])
            .output()
            .is_ok_and(|o| o.status.success())
    });
    if found.is_none() {
        assert!(
            std::env::var_os("MISSIVE_REQUIRE_VALIDATORS").is_none(),
            "aiosmtpd is required here but not installed (pip install aiosmtpd)"
        );
        eprintln!("notice: aiosmtpd not installed (pip install aiosmtpd), skipping");
    }
    found
}

/// The SMTP server child process; killed on drop.
struct Server {
    child: Child,
    port: u16,
    dir: PathBuf,
}

impl Server {
    fn start(python: &Path, dir: &Path, mode: &str) -> Server {
        let mut child = Command::new(python)
            .arg(root().join("tests/smtp/server.py"))
            .args(["--dir", &dir.display().to_string(), "--mode", mode])
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("start the SMTP server");
        let stdout = child.stdout.take().expect("server stdout");
        let mut line = String::new();
        BufReader::new(stdout)
            .read_line(&mut line)
            .expect("server says READY");
        let port = line
            .trim()
            .strip_prefix("READY ")
            .and_then(|p| p.parse().ok())
            .unwrap_or_else(|| panic!("unexpected server output `{line}`"));
        Server {
            child,
            port,
            dir: dir.to_owned(),
        }
    }

    /// Every message stored, parsed back, in arrival order.
    fn messages(&self) -> Vec<Value> {
        let mut files: Vec<PathBuf> = std::fs::read_dir(&self.dir)
            .map(|entries| {
                entries
                    .filter_map(|e| e.ok().map(|e| e.path()))
                    .filter(|p| p.extension().is_some_and(|x| x == "json"))
                    .collect()
            })
            .unwrap_or_default();
        files.sort();
        files
            .iter()
            .map(|f| {
                serde_json::from_slice(&std::fs::read(f).expect("read message json"))
                    .expect("message json")
            })
            .collect()
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A working directory: accounts, a configuration pointing at a server, output, ledger.
struct Setup {
    dir: TempDir,
    python: PathBuf,
}

impl Setup {
    /// Accounts from `tests/fixtures/email/accounts` (only `files`, or all when empty).
    fn new(python: PathBuf, files: &[&str]) -> Setup {
        let dir = tempfile::tempdir().expect("temp dir");
        let accounts = dir.path().join("accounts");
        std::fs::create_dir_all(&accounts).expect("accounts dir");
        let src = root().join("tests/fixtures/email/accounts");
        for entry in std::fs::read_dir(&src).expect("fixture dir") {
            let path = entry.expect("entry").path();
            let name = path
                .file_name()
                .expect("name")
                .to_string_lossy()
                .into_owned();
            if files.is_empty() || files.contains(&name.as_str()) {
                std::fs::copy(&path, accounts.join(&name)).expect("copy fixture");
            }
        }
        Setup { dir, python }
    }

    fn path(&self, rel: &str) -> PathBuf {
        self.dir.path().join(rel)
    }

    fn server(&self, name: &str, mode: &str) -> Server {
        Server::start(&self.python, &self.path(name), mode)
    }

    /// Writes `config.toml`: the shipped configuration (approval gate off) with the `[email]` table pointed at
    /// `port`, and returns its path.
    fn config(&self, port: u16) -> String {
        let shipped = std::fs::read_to_string(root().join("missive.toml")).expect("config");
        // These tests are about sending, not approvals (tests/review.rs covers the gate).
        let shipped = shipped.replace("require_approval = true", "require_approval = false");
        let head = shipped.split("\n[email]").next().expect("config head");
        let text = format!(
            "{head}\n[email]\nfrom = \"Connecticut DRS <notices@po.state.ct.us>\"\n\
             reply_to = \"drs@po.state.ct.us\"\nattach_pdf = true\n\
             view_url = \"https://portal.ct.gov/DRS/myconnect\"\nhost = \"127.0.0.1\"\n\
             port = {port}\ntls = \"none\"\npassword_env = \"MISSIVE_TEST_SMTP_PASSWORD\"\n\
             pool_size = 2\nrate_per_second = 200.0\nmax_retries = 2\nretry_backoff_ms = 20\n\
             timeout_seconds = 5\n"
        );
        let path = self.path("config.toml");
        std::fs::write(&path, text).expect("write config");
        path.display().to_string()
    }

    fn missive(&self, port: u16, args: &[&str]) -> Run {
        let config = self.config(port);
        let mut all = vec!["--config", config.as_str()];
        all.extend_from_slice(args);
        common::missive_in(self.dir.path(), &all)
    }

    /// `missive run` on the accounts (mail date 2026-12-01) with `extra` arguments.
    fn run(&self, port: u16, extra: &[&str]) -> Run {
        let mut args = vec![
            "run",
            "--accounts",
            "accounts",
            "--out",
            "out",
            "--as-of",
            "2026-12-01",
            "--allow-past-mail-date",
            "--templates",
        ];
        let templates = root().join("templates").display().to_string();
        let fonts = root().join("fonts").display().to_string();
        args.push(&templates);
        args.extend(["--fonts", fonts.as_str(), "--jobs", "1"]);
        args.extend_from_slice(extra);
        self.missive(port, &args)
    }

    fn send(&self, port: u16, extra: &[&str]) -> Run {
        let mut args = vec!["send", "--ledger", "out/missive.db"];
        args.extend_from_slice(extra);
        self.missive(port, &args)
    }

    fn ledger(&self) -> SqliteLedger {
        SqliteLedger::open(&self.path("out/missive.db")).expect("open ledger")
    }

    fn state(&self, key: &str) -> LetterState {
        self.ledger()
            .letter(&LetterKey::from_text(key))
            .expect("read")
            .expect("letter in ledger")
            .state
    }
}

const LETTER: &str = "EM-OK/offset_notice/S1";
const ITO: &str = "EM-ITO/intent_to_offset/L1";

fn messages_for<'a>(messages: &'a [Value], key: &str) -> Vec<&'a Value> {
    let file = format!("{}.pdf", key.replace('/', "_"));
    messages
        .iter()
        .filter(|m| m["attachments"][0]["filename"] == file.as_str())
        .collect()
}

#[test]
fn consented_letters_arrive_once_with_the_rendered_pdf() {
    let Some(python) = python() else { return };
    let s = Setup::new(python, &[]);
    // A taxpayer whose name is an HTML injection attempt.
    let valid = std::fs::read_to_string(s.path("accounts/valid.json")).expect("read");
    let evil = valid
        .replace("EM-OK", "EM-XSS")
        .replace("Test Payer", "<script>alert(1)</script>")
        .replace("payer@example.org", "xss@example.org");
    std::fs::write(s.path("accounts/xss.json"), evil).expect("write");
    let server = s.server("inbox", "accept");

    s.run(server.port, &["--send"]).expect_code(0);
    let messages = server.messages();
    // EM-OK's offset notice, EM-XSS's, and EM-ITO's email copy; nothing for the taxpayers
    // without consent or with a malformed address.
    assert_eq!(messages.len(), 3, "{messages:#?}");
    for m in &messages {
        let structure: Vec<(u64, &str)> = m["structure"]
            .as_array()
            .expect("structure")
            .iter()
            .map(|p| {
                (
                    p["depth"].as_u64().expect("depth"),
                    p["content_type"].as_str().expect("type"),
                )
            })
            .collect();
        assert_eq!(
            structure,
            [
                (0, "multipart/mixed"),
                (1, "multipart/alternative"),
                (2, "text/plain"),
                (2, "text/html"),
                (1, "application/pdf"),
            ]
        );
        assert_eq!(m["from"], "Connecticut DRS <notices@po.state.ct.us>");
        assert_eq!(m["reply_to"], "drs@po.state.ct.us");
        assert_eq!(m["mail_from"], "notices@po.state.ct.us");
        let id = m["message_id"].as_str().expect("id");
        assert!(
            id.len() == 56
                && id[1..33].bytes().all(|b| b.is_ascii_hexdigit())
                && id.ends_with("@missive.portal.ct.gov>"),
            "{id}"
        );
        assert!(m["date"].as_str().is_some_and(|d| d != "None"));
        // The attachment is byte for byte the rendered PDF.
        let attachment = &m["attachments"][0];
        let name = attachment["filename"].as_str().expect("filename");
        let sent = std::fs::read(server.dir.join(attachment["file"].as_str().expect("file")))
            .expect("attachment");
        let rendered = std::fs::read(s.path("out").join(name)).expect("rendered pdf");
        assert_eq!(sent, rendered, "{name}");
    }

    let letter = messages_for(&messages, LETTER);
    assert_eq!(letter.len(), 1);
    assert_eq!(
        letter[0]["rcpt_tos"],
        serde_json::json!(["payer@example.org"])
    );
    // The subject is the letter's own title (`[titles]` in missive.toml).
    assert_eq!(
        letter[0]["subject"],
        "Your Connecticut Tax Refund Was Applied to Another Agency’s Debt"
    );
    assert!(
        letter[0]["text"]
            .as_str()
            .is_some_and(|t| t.contains("$100.00"))
    );
    let ledger = s.ledger();
    let record = ledger
        .email(&LetterKey::from_text(LETTER))
        .expect("read")
        .expect("email");
    assert_eq!(
        record.message_id.as_deref(),
        letter[0]["message_id"].as_str()
    );
    assert!(
        record
            .reply
            .as_deref()
            .is_some_and(|r| r.starts_with("250 "))
    );
    assert_eq!(s.state(LETTER), LetterState::Sent);

    // `history` shows what happened to the email, from the outside.
    let history = s.missive(
        server.port,
        &[
            "history",
            "--key",
            LETTER,
            "--ledger",
            "out/missive.db",
            "--format",
            "json",
        ],
    );
    history.expect_code(0);
    let doc: serde_json::Value = serde_json::from_str(&history.stdout).expect("history json");
    let email = &doc["letters"][0]["email"];
    assert_eq!(email["state"], "sent", "{doc:#}");
    assert_eq!(email["message_id"], letter[0]["message_id"], "{doc:#}");
    let table = s.missive(
        server.port,
        &["history", "EM-OK", "--ledger", "out/missive.db"],
    );
    assert!(table.stdout.contains("EMAILS (1)"), "{}", table.stdout);
    assert!(
        table.stdout.contains("server said: 250"),
        "{}",
        table.stdout
    );

    // HTML injection: the name arrives escaped in the HTML part.
    let xss = messages_for(&messages, "EM-XSS/offset_notice/S1");
    let html = xss[0]["html"].as_str().expect("html");
    assert!(!html.contains("<script>"), "{html}");
    assert!(html.contains("&lt;script&gt;alert(1)&lt;"), "{html}");

    // Consent: the intent to offset stays print (certified) and its email copy went out.
    assert_eq!(messages_for(&messages, ITO).len(), 1);
    assert_eq!(s.state(ITO), LetterState::Rendered);
    let copy = ledger
        .email(&LetterKey::from_text(ITO))
        .expect("read")
        .expect("copy");
    assert_eq!((copy.role.as_str(), copy.state.as_str()), ("copy", "sent"));
    for key in [
        "EM-NOCONSENT/offset_notice/S1",
        "EM-BAD/offset_notice/S1",
        "EM-NONE/offset_notice/S1",
        "EM-ITO-BAD/intent_to_offset/L1",
    ] {
        let key = LetterKey::from_text(key);
        assert!(
            ledger.email(&key).expect("read").is_none(),
            "{key} must not be emailed"
        );
        let letter = ledger.letter(&key).expect("read").expect("letter planned");
        assert_eq!(letter.channel.as_str(), "print", "{key}");
    }

    // Running again delivers nothing.
    s.run(server.port, &["--send"]).expect_code(0);
    s.send(server.port, &[]).expect_code(0);
    assert_eq!(server.messages().len(), 3);
}

#[test]
fn a_451_is_retried_and_the_letter_arrives_once() {
    let Some(python) = python() else { return };
    let s = Setup::new(python, &["valid.json"]);
    let server = s.server("inbox", "451-once");
    s.run(server.port, &["--send"]).expect_code(0);
    assert_eq!(server.messages().len(), 1);
    assert_eq!(s.state(LETTER), LetterState::Sent);
    let email = s
        .ledger()
        .email(&LetterKey::from_text(LETTER))
        .expect("read")
        .expect("email");
    assert_eq!(email.attempts, 2);
    s.send(server.port, &[]).expect_code(0);
    assert_eq!(server.messages().len(), 1);
}

#[test]
fn a_550_fails_without_retry_and_falls_back_to_print() {
    let Some(python) = python() else { return };
    let s = Setup::new(python, &["valid.json"]);
    let server = s.server("inbox", "550");
    let run = s.run(server.port, &["--send", "--fallback-print"]);
    run.expect_code(1);
    assert!(run.stderr.contains("550"), "{}", run.stderr);
    assert_eq!(s.state(LETTER), LetterState::Failed);
    let email = s
        .ledger()
        .email(&LetterKey::from_text(LETTER))
        .expect("read")
        .expect("email");
    assert_eq!(email.attempts, 1, "no retry after a 5xx");
    assert!(email.fallback_print);
    assert!(server.messages().is_empty());
    // The next run plans it as first-class mail and renders it for print.
    s.run(server.port, &[]).expect_code(0);
    let letter = s
        .ledger()
        .letter(&LetterKey::from_text(LETTER))
        .expect("read")
        .expect("letter");
    assert_eq!(letter.state, LetterState::Rendered);
    assert_eq!(letter.channel.as_str(), "print");
}

#[test]
fn a_dropped_connection_after_data_is_uncertain_and_not_resent() {
    let Some(python) = python() else { return };
    let s = Setup::new(python, &["valid.json"]);
    let dropping = s.server("inbox", "drop-after-data");
    s.run(dropping.port, &["--send"]).expect_code(1);
    assert_eq!(s.state(LETTER), LetterState::Uncertain);
    assert_eq!(dropping.messages().len(), 1, "the server did get it");
    drop(dropping);

    let server = s.server("inbox", "accept");
    // Every later send says the email is still uncertain and exits 1 until a person acts.
    for send in [s.send(server.port, &[]), s.run(server.port, &["--send"])] {
        send.expect_code(1);
        assert!(
            send.stderr.contains("1 emails uncertain") && send.stderr.contains(LETTER),
            "{}",
            send.stderr
        );
    }
    assert_eq!(server.messages().len(), 1, "not resent automatically");
    assert_eq!(s.state(LETTER), LetterState::Uncertain);

    // A deliberate resend goes out with the same Message-ID.
    s.send(server.port, &["--resend-uncertain"]).expect_code(0);
    let messages = server.messages();
    assert_eq!(messages.len(), 2);
    assert_eq!(messages[0]["message_id"], messages[1]["message_id"]);
    assert_eq!(s.state(LETTER), LetterState::Sent);
}

#[test]
fn a_421_keeps_the_letter_queued_until_the_server_is_back() {
    let Some(python) = python() else { return };
    let s = Setup::new(python, &["valid.json"]);
    let busy = s.server("busy", "421");
    let run = s.run(busy.port, &["--send"]);
    run.expect_code(1);
    assert!(run.stderr.contains("421"), "{}", run.stderr);
    assert_eq!(s.state(LETTER), LetterState::Rendered);
    assert!(busy.messages().is_empty());
    drop(busy);

    let server = s.server("inbox", "accept");
    s.send(server.port, &[]).expect_code(0);
    assert_eq!(server.messages().len(), 1);
    assert_eq!(s.state(LETTER), LetterState::Sent);
    s.send(server.port, &[]).expect_code(0);
    assert_eq!(server.messages().len(), 1);
}

#[test]
fn a_send_killed_mid_transaction_leaves_the_letter_uncertain() {
    let Some(python) = python() else { return };
    let s = Setup::new(python, &["valid.json"]);
    let hanging = s.server("inbox", "hang");
    // Render without sending, then send against a server that never answers DATA.
    s.run(hanging.port, &[]).expect_code(0);
    let config = s.config(hanging.port);
    let mut child = Command::new(env!("CARGO_BIN_EXE_missive"))
        .args(["--config", &config, "send", "--ledger", "out/missive.db"])
        .current_dir(s.dir.path())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("start missive send");
    let started = Instant::now();
    while hanging.messages().is_empty() {
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "nothing arrived"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    child.kill().expect("kill missive send");
    let _ = child.wait();
    assert_eq!(s.state(LETTER), LetterState::Sending);
    drop(hanging);

    let server = s.server("inbox2", "accept");
    let send = s.send(server.port, &[]);
    send.expect_code(1);
    assert!(send.stderr.contains("uncertain"), "{}", send.stderr);
    assert_eq!(s.state(LETTER), LetterState::Uncertain);
    assert!(server.messages().is_empty(), "not resent automatically");
}

#[test]
fn a_dry_run_writes_eml_files_and_sends_nothing() {
    let Some(python) = python() else { return };
    let s = Setup::new(python, &["valid.json", "ito-consent.json"]);
    let server = s.server("inbox", "accept");
    s.run(server.port, &[]).expect_code(0);
    s.send(server.port, &["--to-dir", "eml"]).expect_code(0);
    let eml = std::fs::read_to_string(s.path("eml/EM-OK_offset_notice_S1.eml")).expect("eml");
    assert!(eml.contains("Message-ID: <"), "{eml}");
    assert!(
        eml.contains("To: \"Test Payer\" <payer@example.org>"),
        "{eml}"
    );
    assert!(s.path("eml/EM-ITO_intent_to_offset_L1.eml").is_file());
    assert!(server.messages().is_empty());
    assert_eq!(s.state(LETTER), LetterState::Rendered);
    // Sending afterwards delivers them.
    s.send(server.port, &[]).expect_code(0);
    assert_eq!(server.messages().len(), 2);
}

/// Uncertain emails (a letter and an intent's email copy) keep every `send` failing until a
/// person, having read the server's log, marks each `sent` or `failed`.
#[test]
fn uncertain_emails_wait_for_a_person_to_mark_them() {
    let Some(python) = python() else { return };
    let s = Setup::new(python, &["valid.json", "ito-consent.json"]);
    let dropping = s.server("inbox", "drop-after-data");
    s.run(dropping.port, &["--send"]).expect_code(1);
    let email_state = |key: &str| {
        s.ledger()
            .email(&LetterKey::from_text(key))
            .expect("read")
            .expect("email")
            .state
            .as_str()
    };
    assert_eq!(email_state(LETTER), "uncertain");
    assert_eq!(email_state(ITO), "uncertain");
    drop(dropping);

    let server = s.server("inbox2", "accept");
    let send = s.send(server.port, &[]);
    send.expect_code(1);
    assert!(
        send.stderr
            .contains("2 emails uncertain in the ledger (2 from earlier sends)")
            && send.stderr.contains("missive mark KEY sent"),
        "{}",
        send.stderr
    );

    // Marking needs a note saying who checked the log; unknown keys are refused.
    let mark = |key: &str, state: &str, note: Option<&str>| {
        let mut args = vec!["mark", key, state, "--ledger", "out/missive.db"];
        if let Some(note) = note {
            args.extend(["--note", note]);
        }
        s.missive(server.port, &args)
    };
    let refused = mark(LETTER, "sent", None);
    refused.expect_code(2);
    assert!(refused.stderr.contains("--note"), "{}", refused.stderr);
    assert_eq!(email_state(LETTER), "uncertain");

    mark(
        LETTER,
        "sent",
        Some("Pat Lee: server log shows 250 queued as 0001"),
    )
    .expect_code(0);
    assert_eq!(s.state(LETTER), LetterState::Sent);
    assert_eq!(email_state(LETTER), "sent");
    let send = s.send(server.port, &[]);
    send.expect_code(1);
    assert!(
        send.stderr.contains("1 emails uncertain"),
        "{}",
        send.stderr
    );

    mark(ITO, "failed", Some("Pat Lee: not in the server log")).expect_code(0);
    assert_eq!(email_state(ITO), "failed");
    assert_eq!(
        s.state(ITO),
        LetterState::Rendered,
        "the certified letter itself is untouched by its email copy"
    );
    s.send(server.port, &[]).expect_code(0);
    s.run(server.port, &["--send"]).expect_code(0);
    assert!(server.messages().is_empty(), "nothing was resent");

    // Recorded with who and why, and only an uncertain email can be marked.
    let history = s.missive(
        server.port,
        &["history", "EM-OK", "--ledger", "out/missive.db"],
    );
    assert!(
        history.stdout.contains("marked sent by hand")
            && history.stdout.contains("server log shows 250"),
        "{}",
        history.stdout
    );
    let again = mark(LETTER, "failed", Some("oops"));
    again.expect_code(2);
    assert!(again.stderr.contains("not uncertain"), "{}", again.stderr);
}

#[test]
fn spanish_emails_arrive_in_spanish() {
    let Some(python) = python() else { return };
    let s = Setup::new(python, &["valid.json", "ito-consent.json"]);
    for file in ["valid.json", "ito-consent.json"] {
        let path = s.path(&format!("accounts/{file}"));
        let mut account: Value =
            serde_json::from_str(&std::fs::read_to_string(&path).expect("read")).expect("json");
        account["language"] = Value::String("es".to_owned());
        std::fs::write(&path, serde_json::to_vec(&account).expect("json")).expect("write");
    }
    let server = s.server("inbox", "accept");
    s.run(server.port, &["--send"]).expect_code(0);
    let messages = server.messages();
    assert_eq!(messages.len(), 2, "{messages:#?}");

    let letter = messages_for(&messages, LETTER);
    assert_eq!(letter.len(), 1);
    assert_eq!(
        letter[0]["subject"],
        "Su reembolso de impuestos de Connecticut se aplicó a la deuda con otra agencia"
    );
    let text = letter[0]["text"].as_str().expect("text");
    let html = letter[0]["html"].as_str().expect("html");
    for part in [text, html] {
        assert!(part.contains("Estimado(a) Test Payer:"), "{part}");
        assert!(part.contains("1 de diciembre de 2026"), "{part}");
        assert!(part.contains("$100.00"), "{part}");
        assert!(
            part.contains("Tenemos una carta nueva para usted"),
            "{part}"
        );
        assert!(
            !part.contains("Dear ") && !part.contains("December"),
            "{part}"
        );
    }
    assert!(html.contains("<html lang=\"es-US\">"), "{html}");
    // The attached PDF is the Spanish letter.
    let attachment = &letter[0]["attachments"][0];
    let pdf = server.dir.join(attachment["file"].as_str().expect("file"));
    let doc = lopdf::Document::load(&pdf).expect("PDF");
    let lang = doc
        .catalog()
        .expect("catalog")
        .get(b"Lang")
        .and_then(|l| l.as_str())
        .expect("/Lang")
        .to_vec();
    assert_eq!(lang, b"es-US");

    let ito = messages_for(&messages, ITO);
    assert_eq!(ito.len(), 1);
    assert_eq!(
        ito[0]["subject"],
        "Aviso de intención de compensar su reembolso federal de impuestos"
    );
    let text = ito[0]["text"].as_str().expect("text");
    assert!(text.contains("copia por correo electrónico"), "{text}");
    assert!(text.contains("de 2027"), "deadline in Spanish: {text}");
}

#[test]
fn a_postgres_ledger_sends_the_same_emails_once() {
    let Some(python) = python() else { return };
    let Some(db) = common::pg::fresh_database("email_pg") else {
        return;
    };
    // What the same accounts send from a SQLite ledger …
    let on_sqlite = Setup::new(python.clone(), &[]);
    let sqlite_inbox = on_sqlite.server("inbox", "accept");
    on_sqlite.run(sqlite_inbox.port, &[]).expect_code(0);
    on_sqlite.send(sqlite_inbox.port, &[]).expect_code(0);
    // … and from PostgreSQL, run then sent by `send`.
    let on_pg = Setup::new(python, &[]);
    let pg_inbox = on_pg.server("inbox", "accept");
    on_pg
        .run(pg_inbox.port, &["--ledger", &db.url])
        .expect_code(0);
    let send = || on_pg.missive(pg_inbox.port, &["send", "--ledger", &db.url]);
    send().expect_code(0);
    let summary = |messages: Vec<Value>| {
        let mut rows: Vec<(String, String, String)> = messages
            .iter()
            .map(|m| {
                (
                    m["to"].to_string(),
                    m["subject"].to_string(),
                    m["attachments"][0]["filename"].to_string(),
                )
            })
            .collect();
        rows.sort();
        rows
    };
    let sent = summary(pg_inbox.messages());
    assert!(!sent.is_empty());
    assert_eq!(sent, summary(sqlite_inbox.messages()));
    // Sent once: a second `send` finds nothing to send.
    send().expect_code(0);
    assert_eq!(summary(pg_inbox.messages()), sent);
}
