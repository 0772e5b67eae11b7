//! Dispatch unit tests: composing, and the once-only protocol against a scripted mailer
//! and lettre's stub transport. The real SMTP server tests are in `tests/email.rs`.

use std::collections::HashMap;
use std::path::Path;
use std::sync::Mutex;

use lettre::address::Envelope;
use sha2::{Digest, Sha256};
use tempfile::TempDir;

use super::*;
use crate::account::Account;
use crate::config::{BUILT_IN, Config};
use crate::decide::{DecideContext, DueLetter};
use crate::ledger::prelude::*;
use crate::ledger::{EmailRole, LetterState, NewRun, PlannedLetter, RenderedFile, SqliteLedger};
use crate::letter::Channel;

fn config(attach_pdf: bool) -> Config {
    let mut config = Config::parse(BUILT_IN).expect("built-in config");
    config.email.attach_pdf = attach_pdf;
    config.email.retry_backoff_ms = 1;
    config.email.rate_per_second = 10_000.0;
    config
}

/// The accounts and due letters of `tests/fixtures/email`.
fn fixture(config: &Config) -> (HashMap<String, Account>, Vec<DueLetter>) {
    planned(config, "tests/fixtures/email/accounts", |_| {})
}

/// The accounts (each changed by `edit` after planning) and due letters of `dir`, planned
/// at 2026-12-01.
fn planned(
    config: &Config,
    dir: &str,
    mut edit: impl FnMut(&mut Account),
) -> (HashMap<String, Account>, Vec<DueLetter>) {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join(dir);
    let calendar = config.holiday_calendar();
    let d = |s: &str| crate::load::parse_iso_date(s).expect("date");
    let ctx = DecideContext {
        as_of: d("2026-12-01"),
        mail_date: d("2026-12-01"),
        policy: &config.policy,
        calendar: &calendar,
    };
    let mut accounts = HashMap::new();
    let plan = crate::plan::plan_batch(
        crate::load::records(&dir).expect("fixture"),
        &HashMap::new(),
        &ctx,
        |p| {
            let mut account = p.account.clone();
            edit(&mut account);
            accounts.insert(p.account.account_id.clone(), account);
        },
    );
    (accounts, plan.letters)
}

fn composer(config: &Config) -> EmailComposer {
    let templates = Path::new(env!("CARGO_MANIFEST_DIR")).join("templates");
    EmailComposer::load(&templates, config).expect("email templates load")
}

#[test]
fn html_is_escaped_and_text_is_not() {
    let config = config(true);
    let (mut accounts, letters) = fixture(&config);
    let mut letter = letters
        .iter()
        .find(|l| l.account_id == "EM-OK")
        .expect("EM-OK letter")
        .clone();
    let account = accounts.get_mut("EM-OK").expect("account");
    account.taxpayer.name = "<script>alert(1)</script> & Co".to_owned();
    // The greeting names the letter's recipients (the plan's copy of the name).
    letter.recipients = vec![account.taxpayer.name.clone()];
    let email = composer(&config)
        .compose(account, &letter, EmailRole::Letter)
        .expect("compose");
    assert!(!email.html.contains("<script>"), "{}", email.html);
    assert!(email.html.contains("&lt;script&gt;"), "{}", email.html);
    assert!(email.text.contains("Dear <script>alert(1)</script> & Co,"));
    assert!(email.html.contains("$100.00"), "amounts with the PDF");
    assert_eq!(email.to_address, "payer@example.org");
    assert!(!email.subject.contains('\n'));
}

#[test]
fn without_the_pdf_no_amount_is_in_the_email() {
    let config = config(false);
    let (accounts, letters) = fixture(&config);
    let composer = composer(&config);
    for letter in &letters {
        let role = match (letter.channel, letter.email_copy) {
            (Channel::Email, _) => EmailRole::Letter,
            (_, true) => EmailRole::Copy,
            _ => continue,
        };
        let email = composer
            .compose(&accounts[&letter.account_id], letter, role)
            .expect("compose");
        for part in [&email.subject, &email.text, &email.html] {
            assert!(!part.contains('$'), "{}: {part}", letter.key);
            assert!(
                !part.contains("500.00") && !part.contains("100.00"),
                "{part}"
            );
        }
        assert!(email.text.contains("https://portal.ct.gov/DRS/myconnect"));
    }
}

/// A mailer that answers from a script (per call, in order), then accepts.
/// Scripted replies to one kind of message, in order.
type Replies = Vec<Result<String, SendFailure>>;

/// A mailer that answers from a script instead of a server. Replies are scripted per
/// message, found by a needle in the message text (e.g. the account id), in order, then
/// `250`: a round sends its messages on several threads at once, so a script in call
/// order would be a race.
struct Scripted {
    script: Mutex<Vec<(String, Replies)>>,
    delivered: Mutex<Vec<Vec<u8>>>,
}

impl Scripted {
    /// No scripted failures: every message is accepted.
    fn accept_all() -> Scripted {
        Scripted::by_needle(Vec::new())
    }

    /// `(needle, replies)`: the replies, in order, to messages whose text holds the needle.
    fn by_needle(script: Vec<(&str, Replies)>) -> Scripted {
        let script = script
            .into_iter()
            .map(|(needle, mut replies)| {
                replies.reverse();
                (needle.to_owned(), replies)
            })
            .collect();
        Scripted {
            script: Mutex::new(script),
            delivered: Mutex::new(Vec::new()),
        }
    }
}

impl Mailer for Scripted {
    fn send(&self, _: &Envelope, message: &[u8]) -> Result<String, SendFailure> {
        let text = String::from_utf8_lossy(message);
        let next = self
            .script
            .lock()
            .expect("lock")
            .iter_mut()
            .find(|(needle, _)| text.contains(needle.as_str()))
            .and_then(|(_, replies)| replies.pop());
        let answer = next.unwrap_or_else(|| Ok("250 2.0.0 OK".to_owned()));
        if answer.is_ok() || matches!(answer, Err(SendFailure::Unknown(_))) {
            self.delivered.lock().expect("lock").push(message.to_vec());
        }
        answer
    }
}

/// A ledger holding the fixture's email letter (EM-OK) rendered, and the intent to
/// offset of EM-ITO with its email copy.
fn ledger_with_emails(config: &Config) -> (TempDir, SqliteLedger, Vec<DueLetter>) {
    let dir = tempfile::tempdir().expect("temp dir");
    let mut ledger = SqliteLedger::open(&dir.path().join("missive.db")).expect("ledger");
    let run = ledger
        .begin_run(&NewRun {
            as_of: crate::load::parse_iso_date("2026-12-01").expect("date"),
            mail_date: crate::load::parse_iso_date("2026-12-01").expect("date"),
            config_sha256: "c0ffee".to_owned(),
            accounts: "fixture".to_owned(),
            out_dir: dir.path().display().to_string(),
        })
        .expect("run");
    let (accounts, letters) = fixture(config);
    let letters: Vec<DueLetter> = letters
        .into_iter()
        .filter(|l| l.account_id == "EM-OK" || l.account_id == "EM-ITO")
        .collect();
    let planned: Vec<PlannedLetter> = letters
        .iter()
        .map(|l| crate::runner::records::planned_letter(l).expect("planned"))
        .collect();
    let keys = ledger.record_planned(run.id, &planned).expect("plan");
    let composer = composer(config);
    let emails: Vec<_> = letters
        .iter()
        .map(|l| {
            let role = if l.channel == Channel::Email {
                EmailRole::Letter
            } else {
                EmailRole::Copy
            };
            composer
                .compose(&accounts[&l.account_id], l, role)
                .expect("compose")
        })
        .collect();
    ledger
        .record_emails(run.id, &keys, &emails)
        .expect("emails");
    let files: Vec<RenderedFile> = letters
        .iter()
        .map(|l| {
            let file = format!("{}.pdf", l.key.file_stem());
            let bytes = format!("%PDF-1.7 {}", l.key).into_bytes();
            std::fs::write(dir.path().join(&file), &bytes).expect("write pdf");
            RenderedFile {
                key: l.key.clone(),
                file,
                file_sha256: hex(&Sha256::digest(&bytes)),
                pages: 1,
                template: "t".to_owned(),
                template_sha256: "h".to_owned(),
            }
        })
        .collect();
    ledger.record_rendered(run.id, &files).expect("rendered");
    (dir, ledger, letters)
}

#[test]
fn each_email_is_sent_once_with_the_reply_recorded() {
    let config = config(true);
    let (_dir, mut ledger, letters) = ledger_with_emails(&config);
    assert_eq!(letters.len(), 2);
    let mailer = Scripted::accept_all();
    let report = send_queue(
        &mut ledger,
        &config,
        &mailer,
        SendOptions::default(),
        |_, _| {},
    )
    .expect("send");
    assert_eq!(report.sent.len(), 2);
    assert_eq!(mailer.delivered.lock().expect("lock").len(), 2);
    for letter in &letters {
        let email = ledger.email(&letter.key).expect("read").expect("email");
        assert_eq!(email.state.as_str(), "sent");
        assert_eq!(email.reply.as_deref(), Some("250 2.0.0 OK"));
        let state = ledger
            .letter(&letter.key)
            .expect("read")
            .expect("letter")
            .state;
        match letter.channel {
            Channel::Email => assert_eq!(state, LetterState::Sent),
            // The certified letter is the print batch's business: still rendered.
            Channel::Print => assert_eq!(state, LetterState::Rendered),
        }
    }
    // A second send finds nothing.
    let again = send_queue(
        &mut ledger,
        &config,
        &mailer,
        SendOptions::default(),
        |_, _| {},
    )
    .expect("send");
    assert!(again.sent.is_empty());
    assert_eq!(mailer.delivered.lock().expect("lock").len(), 2);
}

#[test]
fn transient_failures_retry_refusals_fail_and_unknowns_stay_uncertain() {
    let config = config(true);
    let (_dir, mut ledger, letters) = ledger_with_emails(&config);
    let (copy, letter) = (&letters[0].key, &letters[1].key);
    assert!(copy.as_str().starts_with("EM-ITO"), "{copy}");
    // Round 1 sends both: copy → 451, letter → unknown; round 2 retries the copy → 550.
    let mailer = Scripted::by_needle(vec![
        (
            "EM-ITO",
            vec![
                Err(SendFailure::NotDelivered("451 try later".to_owned())),
                Err(SendFailure::Refused("550 no such user".to_owned())),
            ],
        ),
        (
            "EM-OK",
            vec![Err(SendFailure::Unknown("connection lost".to_owned()))],
        ),
    ]);
    let options = SendOptions {
        fallback_print: true,
        ..SendOptions::default()
    };
    let report = send_queue(&mut ledger, &config, &mailer, options, |_, _| {}).expect("send");
    assert_eq!(report.uncertain.len(), 1);
    assert_eq!(report.failed.len(), 1);
    let copy_email = ledger.email(copy).expect("read").expect("email");
    assert_eq!(copy_email.state.as_str(), "failed");
    assert_eq!(copy_email.attempts, 2);
    let letter_state = ledger.letter(letter).expect("read").expect("letter").state;
    assert_eq!(letter_state, LetterState::Uncertain);

    // Not resent by a plain send; resent deliberately, with the same Message-ID.
    let first_id = ledger.email(letter).expect("read").expect("e").message_id;
    let plain = send_queue(
        &mut ledger,
        &config,
        &mailer,
        SendOptions::default(),
        |_, _| {},
    )
    .expect("send");
    assert!(plain.sent.is_empty());
    let resend = SendOptions {
        resend_uncertain: true,
        ..SendOptions::default()
    };
    let report = send_queue(&mut ledger, &config, &mailer, resend, |_, _| {}).expect("send");
    assert_eq!(report.sent.len(), 1);
    let email = ledger.email(letter).expect("read").expect("email");
    assert_eq!(email.state.as_str(), "sent");
    assert_eq!(email.message_id, first_id);
    assert_eq!(
        ledger.letter(letter).expect("r").expect("l").state,
        LetterState::Sent
    );
}

#[test]
fn a_send_that_died_midway_becomes_uncertain() {
    let config = config(true);
    let (_dir, mut ledger, letters) = ledger_with_emails(&config);
    let key = letters[1].key.clone();
    ledger
        .begin_sending(None, &[(key.clone(), "<x@y>".to_owned())])
        .expect("sending");
    assert_eq!(
        ledger.recover_interrupted_sends().expect("recover"),
        std::slice::from_ref(&key)
    );
    assert_eq!(
        ledger.letter(&key).expect("r").expect("l").state,
        LetterState::Uncertain
    );
    assert!(
        ledger
            .recover_interrupted_sends()
            .expect("recover")
            .is_empty()
    );
}

#[test]
fn a_changed_pdf_is_not_sent() {
    let config = config(true);
    let (dir, mut ledger, letters) = ledger_with_emails(&config);
    let file = dir
        .path()
        .join(format!("{}.pdf", letters[1].key.file_stem()));
    std::fs::write(&file, b"something else").expect("overwrite");
    let mailer = Scripted::accept_all();
    let report = send_queue(
        &mut ledger,
        &config,
        &mailer,
        SendOptions::default(),
        |_, _| {},
    )
    .expect("send");
    assert_eq!(report.skipped.len(), 1);
    assert_eq!(
        ledger.letter(&letters[1].key).expect("r").expect("l").state,
        LetterState::Rendered
    );
}

#[test]
fn lettre_stub_transport_works_as_a_mailer() {
    let config = config(true);
    let (_dir, mut ledger, _) = ledger_with_emails(&config);
    let stub = lettre::transport::stub::StubTransport::new_ok();
    let mailer = TransportMailer(stub.clone());
    let report = send_queue(
        &mut ledger,
        &config,
        &mailer,
        SendOptions::default(),
        |_, _| {},
    )
    .expect("send");
    assert_eq!(report.sent.len(), 2);
    let messages = stub.messages();
    assert_eq!(messages.len(), 2);
    let (envelope, text) = &messages[0];
    assert_eq!(envelope.to()[0].to_string(), "payer@example.org");
    assert!(text.contains("Message-ID: <"), "{text}");
    assert!(text.contains("@missive.portal.ct.gov>"), "{text}");
    assert!(text.contains("multipart/mixed"), "{text}");
    assert!(text.contains("application/pdf"), "{text}");

    // An error the stub cannot explain is of unknown outcome: uncertain, never resent.
    let (_dir, mut ledger, _) = ledger_with_emails(&config);
    let failing = TransportMailer(lettre::transport::stub::StubTransport::new_error());
    let report = send_queue(
        &mut ledger,
        &config,
        &failing,
        SendOptions::default(),
        |_, _| {},
    )
    .expect("send");
    assert_eq!(report.uncertain.len(), 2);
}

#[test]
fn message_ids_are_stable_per_key_and_file() {
    let config = config(true);
    let key = crate::letter::LetterKey::from_text("A/refund/O1");
    let a = message_id(&key, Some("abc"), &config);
    assert_eq!(a, message_id(&key, Some("abc"), &config));
    assert_ne!(a, message_id(&key, Some("abd"), &config));
    assert!(
        a.starts_with('<') && a.ends_with("@missive.portal.ct.gov>"),
        "{a}"
    );
}

/// Issue 12, finding 9: an email's subject is its letter's title; its greeting names every
/// recipient (both spouses on a joint return); the intent-to-offset copy speaks of the
/// federal refund only (the Treasury Offset Program takes no state refund).
#[test]
fn emails_carry_the_title_and_greet_every_recipient() {
    let config = config(true);
    // Everyone consents here, so that every letter has an email to look at.
    let (accounts, letters) = planned(&config, "samples/accounts", |account| {
        account.email = Some(format!("{}@example.org", account.account_id));
        account.electronic_delivery = true;
    });
    let composer = composer(&config);
    let mut joint = 0;
    for letter in &letters {
        let role = if letter.kind == crate::letter::LetterKind::IntentToOffset {
            EmailRole::Copy
        } else {
            EmailRole::Letter
        };
        let email = composer
            .compose(&accounts[&letter.account_id], letter, role)
            .expect("compose");
        // In the account's language (samples 31-34 are Spanish).
        let lang = crate::language::Language::of(&accounts[&letter.account_id]);
        let title = config
            .localized(lang)
            .titles
            .of(letter.kind, letter.variant)
            .to_owned();
        assert_eq!(email.subject, title, "{}", letter.key);
        let greeting = crate::review::facts::Wording::of(lang).greeting_of(&letter.recipients);
        assert!(
            email.text.starts_with(&greeting),
            "{}: {}",
            letter.key,
            email.text
        );
        if letter.recipients.len() > 1 {
            joint += 1;
        }
        if role == EmailRole::Copy {
            for part in [&email.text, &email.html] {
                let (state, federal) = match lang {
                    crate::language::Language::En => ("state tax refund", "federal tax refund"),
                    crate::language::Language::Es => {
                        ("reembolso estatal", "reembolso federal de impuestos")
                    }
                };
                assert!(!part.contains(state), "{part}");
                assert!(part.contains(federal), "{part}");
            }
        }
    }
    assert!(joint >= 2, "the samples have joint letters (07)");
}
