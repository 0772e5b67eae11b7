//! Run-level tests of the orchestrator against a ledger in a temp dir: the order of the
//! steps (planned before anything is rendered, `sending` before the transport is called)
//! and what a resumed run keeps.

use std::path::{Path, PathBuf};
use std::sync::Mutex;

use lettre::address::Envelope;
use tempfile::TempDir;

use super::*;
use crate::compose::Composer;
use crate::config::{BUILT_IN, Config};
use crate::dispatch::SendFailure;
use crate::ledger::prelude::*;
use crate::ledger::{EmailState, Ledger, LetterState, MemoryLedger, SqliteLedger};
use crate::load::parse_iso_date;
use crate::render::Renderer;

fn repo(path: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join(path)
}

fn date(text: &str) -> NaiveDate {
    parse_iso_date(text).expect("date")
}

/// The built-in configuration without the approval gate (no approvals in a new ledger),
/// with fast retries.
fn loaded() -> LoadedConfig {
    let mut config = Config::parse(BUILT_IN).expect("built-in config");
    config.review.require_approval = false;
    config.email.retry_backoff_ms = 1;
    config.email.rate_per_second = 10_000.0;
    LoadedConfig {
        config,
        path: None,
        sha256: "c0ffee".to_owned(),
    }
}

/// The configuration with the templates and fonts of the repository, loaded once per test.
struct Assets {
    loaded: LoadedConfig,
    composer: Composer,
    renderer: Renderer,
    emails: EmailComposer,
}

impl Assets {
    fn load() -> Assets {
        let loaded = loaded();
        let config = &loaded.config;
        Assets {
            composer: Composer::load(&repo("templates"), config).expect("templates"),
            renderer: Renderer::new(&repo("fonts"), &repo("templates/typst")).expect("fonts"),
            emails: EmailComposer::load(&repo("templates"), config).expect("email templates"),
            loaded,
        }
    }

    /// Calls `f` with a run of these assets, `mailer` and `progress`.
    fn with_run<'m, T>(
        &self,
        mailer: &MakeMailer<'m>,
        progress: &dyn Progress,
        f: impl FnOnce(&Run<'_, 'm>) -> T,
    ) -> T {
        let config = &self.loaded.config;
        let producer = Producer {
            composer: &self.composer,
            renderer: &self.renderer,
            author: config.agency.name.clone(),
            jobs: 2,
            keep_replaced: true,
            chunk: crate::produce::RUN_CHUNK,
        };
        let run = Run {
            config: &self.loaded,
            producer: &producer,
            emails: &self.emails,
            mailroom: &Mailroom::from_config(config, None),
            mailer,
            progress,
            workers: &crate::runner::NoWorkers,
        };
        f(&run)
    }
}

/// A new run of the email fixture's accounts into `dir/out`, mailed 2026-12-01.
fn new_run(dir: &TempDir) -> RunOptions {
    RunOptions {
        start: Start::New(NewRunSpec {
            accounts: repo("tests/fixtures/email/accounts"),
            out_dir: dir.path().join("out"),
            as_of: date("2026-12-01"),
            mail_date: date("2026-12-01"),
        }),
        today: date("2026-12-01"),
        allow_past_mail_date: false,
        batches: None,
        send: None,
        work: crate::runner::WorkOptions::default(),
    }
}

fn no_mailer<'a>() -> Result<Box<dyn Mailer + 'a>, DispatchError> {
    Err(DispatchError::PlainTextPassword)
}

/// Progress that, when rendering starts, reads the ledger through its own connection and
/// the output directory: what was recorded, what was written.
struct Watch {
    ledger: PathBuf,
    out_dir: PathBuf,
    seen: Mutex<Option<(Vec<LetterState>, usize)>>,
}

impl Progress for Watch {
    fn start(&self, step: Step, _: usize) {
        if step != Step::Produce {
            return;
        }
        let ledger = SqliteLedger::open(&self.ledger).expect("second connection");
        let run = ledger.runs().expect("runs").last().expect("a run").id;
        let states = ledger
            .letters_of_run(run, None)
            .expect("letters")
            .into_iter()
            .map(|l| l.state)
            .collect();
        let pdfs = std::fs::read_dir(&self.out_dir)
            .map(|dir| dir.filter_map(Result::ok).count())
            .unwrap_or(0);
        *self.seen.lock().expect("lock") = Some((states, pdfs));
    }
}

#[test]
fn a_run_records_every_letter_planned_before_rendering_any() {
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("missive.db");
    let mut ledger = SqliteLedger::open(&path).expect("ledger");
    let assets = Assets::load();
    let watch = Watch {
        ledger: path,
        out_dir: dir.path().join("out"),
        seen: Mutex::new(None),
    };
    let report = assets.with_run(&no_mailer, &watch, |run| {
        run.run(&mut ledger, &new_run(&dir)).expect("run")
    });
    let (states, files) = watch
        .seen
        .lock()
        .expect("lock")
        .take()
        .expect("produce started");
    assert!(report.planned > 0);
    assert_eq!(states.len(), report.planned, "every letter recorded first");
    assert!(
        states.iter().all(|s| *s == LetterState::Planned),
        "{states:?}"
    );
    assert_eq!(files, 0, "nothing written before the letters were recorded");
    // Afterwards each is rendered, and the run finished.
    assert_eq!(report.rendered, report.planned);
    assert_eq!(report.run.status, crate::ledger::RunStatus::Finished);
    let rendered = ledger
        .letters_of_run(report.run.id, Some(LetterState::Rendered))
        .expect("letters");
    assert_eq!(rendered.len(), report.planned);
    assert!(report.is_clean(), "{:?}", report.failed);

    // run-<id>.json, written a page of letters at a time, is the document as a whole
    // `serde_json::Value` prints it (sorted keys, pretty, one newline at the end).
    let letters: Vec<serde_json::Value> = rendered
        .iter()
        .map(|l| {
            serde_json::json!({
                "key": l.key, "file": l.file, "pages": l.pages, "sha256": l.file_sha256,
                "template": l.template, "template_sha256": l.template_sha256,
            })
        })
        .collect();
    let doc = serde_json::json!({ "run_id": report.run.id, "letters": letters, "failed": [] });
    let mut expected = serde_json::to_vec_pretty(&doc).expect("json");
    expected.push(b'\n');
    let written = std::fs::read(dir.path().join(format!("out/run-{}.json", report.run.id)))
        .expect("run summary");
    assert_eq!(
        String::from_utf8_lossy(&written),
        String::from_utf8_lossy(&expected)
    );
}

/// Progress that rewrites the accounts file when the record step starts: between the
/// planning pass and the payload pass, as an operator editing the file during a run would.
struct EditAccounts {
    accounts: PathBuf,
    edited: String,
}

impl Progress for EditAccounts {
    fn start(&self, step: Step, _: usize) {
        if step == Step::Record {
            std::fs::write(&self.accounts, &self.edited).expect("edit the accounts");
        }
    }
}

#[test]
fn accounts_that_change_during_the_run_stop_it_before_anything_is_rendered() {
    // A figure (in the plan hash), an address (only in the account), a language.
    for (from, to) in [
        ("\"tax\":\"1845.00\"", "\"tax\":\"1846.00\""),
        ("\"zip\":\"06105-3722\"", "\"zip\":\"06106-3722\""),
        ("\"language\":\"en\"", "\"language\":\"es\""),
    ] {
        an_edit_between_the_passes_stops_the_run(from, to);
    }
}

/// A run of the samples whose file has `from` replaced by `to` between the two passes.
fn an_edit_between_the_passes_stops_the_run(from: &str, to: &str) {
    let dir = tempfile::tempdir().expect("temp dir");
    let accounts = dir.path().join("accounts.jsonl");
    let samples = std::fs::read_to_string(repo("samples/accounts.jsonl")).expect("samples");
    std::fs::write(&accounts, &samples).expect("accounts");
    let edited = samples.replacen(from, to, 1);
    assert_ne!(edited, samples, "the samples have {from} edited here");
    let path = dir.path().join("missive.db");
    let mut ledger = SqliteLedger::open(&path).expect("ledger");
    let assets = Assets::load();
    let edit = EditAccounts {
        accounts: accounts.clone(),
        edited,
    };
    let mut options = new_run(&dir);
    options.start = Start::New(NewRunSpec {
        accounts: accounts.clone(),
        out_dir: dir.path().join("out"),
        as_of: date("2026-12-01"),
        mail_date: date("2026-12-01"),
    });
    let err = assets
        .with_run(&no_mailer, &edit, |run| run.run(&mut ledger, &options))
        .expect_err("the accounts changed");
    assert!(
        matches!(err, RunError::AccountsChanged { .. }),
        "{from} → {to}: {err}"
    );
    assert!(err.to_string().contains("accounts.jsonl"), "{err}");
    let run = ledger.runs().expect("runs").pop().expect("the run");
    assert_eq!(run.status, crate::ledger::RunStatus::Failed);
    let letters = ledger.letters_of_run(run.id, None).expect("letters");
    assert!(!letters.is_empty(), "the first pass recorded its letters");
    assert!(
        letters.iter().all(|l| l.state == LetterState::Planned),
        "nothing rendered"
    );
    let pdfs = std::fs::read_dir(dir.path().join("out"))
        .map(|d| {
            d.filter_map(Result::ok)
                .filter(|e| e.path().extension().is_some_and(|x| x == "pdf"))
                .count()
        })
        .unwrap_or(0);
    assert_eq!(pdfs, 0, "no letter written");

    // Run again on the edited file: the letters are planned with the new figures and
    // rendered.
    let again = assets
        .with_run(&no_mailer, &NoProgress, |run| {
            run.run(&mut ledger, &options)
        })
        .expect("run again");
    assert_eq!(again.run.status, crate::ledger::RunStatus::Finished);
    assert_eq!(again.rendered, again.planned);
    assert!(again.rendered > 0);
}

#[test]
fn a_resumed_run_keeps_its_dates_and_paths() {
    let dir = tempfile::tempdir().expect("temp dir");
    let mut ledger = MemoryLedger::new();
    let assets = Assets::load();
    assets.with_run(&no_mailer, &NoProgress, |run| {
        let first = run.run(&mut ledger, &new_run(&dir)).expect("run");
        // Resumed a day later: the run's own dates, accounts and output directory, and its
        // mail date (now in the past) is refused unless allowed.
        let resume = RunOptions {
            start: Start::Resume(first.run.id),
            today: date("2026-12-02"),
            ..new_run(&dir)
        };
        let refused = run.run(&mut ledger, &resume);
        assert!(
            matches!(refused, Err(RunError::PastMailDate { .. })),
            "{refused:?}"
        );
        let resume = RunOptions {
            allow_past_mail_date: true,
            ..resume
        };
        let again = run.run(&mut ledger, &resume).expect("resume");
        assert_eq!(again.run.id, first.run.id);
        assert_eq!(again.run.as_of, date("2026-12-01"));
        assert_eq!(again.run.mail_date, date("2026-12-01"));
        assert_eq!(again.run.out_dir, first.run.out_dir);
        assert_eq!(again.run.accounts, first.run.accounts);
        assert!(Path::new(&first.run.out_dir).is_absolute());
        assert_eq!(again.planned, 0, "what was rendered is not rendered again");
        assert!(
            Path::new(&first.run.out_dir)
                .join(format!("run-{}.json", first.run.id))
                .is_file()
        );
        // An unknown run is refused and nothing starts.
        let unknown = RunOptions {
            start: Start::Resume(99),
            ..new_run(&dir)
        };
        assert!(matches!(
            run.run(&mut ledger, &unknown),
            Err(RunError::UnknownRun(99))
        ));
        assert_eq!(ledger.runs().expect("runs").len(), 1);
    });
}

/// A letter's key, its state and its email's state, as the transport saw them.
type Seen = (String, Option<LetterState>, Option<EmailState>);

/// A transport that, for each message, reads the ledger through its own connection and
/// notes the state of the letter being sent; then accepts.
struct Witness {
    ledger: PathBuf,
    states: Mutex<Vec<Seen>>,
}

impl Mailer for Witness {
    fn send(&self, _: &Envelope, message: &[u8]) -> Result<String, SendFailure> {
        let text = String::from_utf8_lossy(message);
        let ledger = SqliteLedger::open(&self.ledger).expect("second connection");
        let mut states = self.states.lock().expect("lock");
        // The letter whose account id the message names.
        for key in ["EM-OK/", "EM-ITO/"] {
            let account = key.trim_end_matches('/');
            if !text.contains(account) {
                continue;
            }
            for letter in ledger.letters_of_account(account).expect("letters") {
                let email = ledger.email(&letter.key).expect("email").map(|e| e.state);
                states.push((letter.key.to_string(), Some(letter.state), email));
            }
        }
        Ok("250 2.0.0 OK".to_owned())
    }
}

#[test]
fn the_send_step_records_sending_before_the_transport_is_called() {
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("missive.db");
    let mut ledger = SqliteLedger::open(&path).expect("ledger");
    let assets = Assets::load();
    let witness = Witness {
        ledger: path,
        states: Mutex::new(Vec::new()),
    };
    let make = || -> Result<Box<dyn Mailer + '_>, DispatchError> { Ok(Box::new(&witness)) };
    let options = RunOptions {
        send: Some(SendOptions::default()),
        ..new_run(&dir)
    };
    let report = assets.with_run(&make, &NoProgress, |run| {
        run.run(&mut ledger, &options).expect("run")
    });
    assert!(report.stopped.is_none(), "{:?}", report.stopped);
    let send = report.send.as_ref().expect("sent");
    assert_eq!(send.report.sent.len(), 2, "{:?}", send.report);
    let states = witness.states.lock().expect("lock");
    // EM-OK's letter goes by email: the letter and its email were `sending`; EM-ITO's
    // copy was `sending` while its certified letter stayed rendered.
    let ok = states
        .iter()
        .find(|(key, _, _)| key.starts_with("EM-OK/"))
        .expect("EM-OK seen");
    assert_eq!(ok.1, Some(LetterState::Sending), "{states:?}");
    assert_eq!(ok.2, Some(EmailState::Sending), "{states:?}");
    let copy = states
        .iter()
        .find(|(key, _, _)| key.starts_with("EM-ITO/"))
        .expect("EM-ITO seen");
    assert_eq!(copy.2, Some(EmailState::Sending), "{states:?}");
    // Afterwards: sent, with the reply.
    for (key, _, _) in states.iter() {
        let key = crate::letter::LetterKey::from_text(key);
        let email = ledger.email(&key).expect("read").expect("email");
        assert_eq!(email.state, EmailState::Sent);
    }
    assert!(report.is_clean());
}

/// What a ledger holds after runs, without ids and times (which differ between backends
/// only in when things happened): each letter's key, state, file and hashes, and each
/// batch with its pieces.
fn holdings(ledger: &dyn Ledger, runs: &[i64]) -> Vec<String> {
    let mut out = Vec::new();
    for &run in runs {
        for l in ledger.letters_of_run(run, None).expect("letters") {
            out.push(format!(
                "{} {} {:?} {:?} {:?}",
                l.key, l.state, l.file, l.file_sha256, l.template_sha256
            ));
        }
        for b in ledger.batches_of_run(run).expect("batches") {
            let pieces: Vec<String> = ledger
                .pieces_of_batch(b.id)
                .expect("pieces")
                .into_iter()
                .map(|p| format!("{} {} {:?}", p.key, p.imb_serial, p.article_number))
                .collect();
            out.push(format!(
                "{} {} {} {} {:?}",
                b.name, b.file_sha256, b.pages, b.amount_due, pieces
            ));
        }
    }
    out
}

#[test]
fn the_in_memory_ledger_and_sqlite_end_a_run_the_same() {
    let assets = Assets::load();
    let mut seen = Vec::new();
    for backend in ["memory", "sqlite"] {
        let dir = tempfile::tempdir().expect("temp dir");
        let mut ledger: Box<dyn Ledger> = match backend {
            "memory" => Box::new(MemoryLedger::new()),
            _ => Box::new(SqliteLedger::open(&dir.path().join("missive.db")).expect("ledger")),
        };
        let options = RunOptions {
            batches: Some(BatchOptions { release: false }),
            ..new_run(&dir)
        };
        let (first, second) = assets.with_run(&no_mailer, &NoProgress, |run| {
            let first = run.run(ledger.as_mut(), &options).expect("run");
            // The same accounts again: everything is already sent, nothing is produced.
            let second = run.run(ledger.as_mut(), &options).expect("second run");
            (first, second)
        });
        assert!(first.planned > 0, "{backend}");
        assert!(first.is_clean(), "{backend}: {:?}", first.failed);
        assert_eq!(second.planned, 0, "{backend}: nothing is planned twice");
        assert_eq!(second.rendered, 0, "{backend}");
        // Files are named by key and the output directory differs: compare relative.
        let out = dir.path().join("out").display().to_string();
        let held: Vec<String> = holdings(ledger.as_ref(), &[first.run.id, second.run.id])
            .into_iter()
            .map(|line| line.replace(&out, "OUT"))
            .collect();
        seen.push(held);
    }
    assert!(
        seen[0].iter().any(|l| l.contains(" rendered "))
            && seen[0]
                .iter()
                .any(|l| l.starts_with("1-certified-1 ") || l.starts_with("1-first_class-1 ")),
        "letters rendered and a batch made: {:?}",
        seen[0]
    );
    assert_eq!(seen[0], seen[1], "the two backends disagree");
}
