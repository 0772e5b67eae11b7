//! The send step against a scripted mailer and lettre's stub transport: every email sent
//! once, retries, refusals, unknown outcomes, and what the ledger records around them.

use std::sync::Mutex;

use lettre::address::Envelope;
use sha2::{Digest, Sha256};
use tempfile::TempDir;

use super::record::new_email;
use crate::config::{Config, hex};
use crate::decide::DueLetter;
use crate::dispatch::tests::{composer, config, fixture};
use crate::dispatch::{Mailer, Role, SendFailure, SendOptions, SendReport, TransportMailer};
use crate::ledger::prelude::*;
use crate::ledger::{EmailState, LetterState, NewRun, PlannedLetter, RenderedFile, SqliteLedger};
use crate::letter::Channel;

/// The send step as the tests call it: no progress, its report.
fn send_queue(
    ledger: &mut SqliteLedger,
    config: &Config,
    mailer: &dyn Mailer,
    options: SendOptions,
) -> Result<SendReport, super::RunError> {
    super::send(ledger, config, mailer, options, &super::NoProgress).map(|s| s.report)
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
        .map(|l| super::records::planned_letter(l).expect("planned"))
        .collect();
    let keys = ledger.record_planned(run.id, &planned).expect("plan");
    let composer = composer(config);
    let emails: Vec<_> = letters
        .iter()
        .map(|l| {
            let role = if l.channel == Channel::Email {
                Role::Letter
            } else {
                Role::Copy
            };
            let email = composer
                .compose(&accounts[&l.account_id], l, role)
                .expect("compose");
            new_email(email, role)
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
                marks: None,
                data_sha256: super::records::plan_sha256(l).expect("plan hash"),
                payload_sha256: None,
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
    let report = send_queue(&mut ledger, &config, &mailer, SendOptions::default()).expect("send");
    assert_eq!(report.sent.len(), 2);
    assert_eq!(mailer.delivered.lock().expect("lock").len(), 2);
    for letter in &letters {
        let email = ledger.email(&letter.key).expect("read").expect("email");
        assert_eq!(email.state, EmailState::Sent);
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
    let again = send_queue(&mut ledger, &config, &mailer, SendOptions::default()).expect("send");
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
    let report = send_queue(&mut ledger, &config, &mailer, options).expect("send");
    assert_eq!(report.uncertain.len(), 1);
    assert_eq!(report.failed.len(), 1);
    let copy_email = ledger.email(copy).expect("read").expect("email");
    assert_eq!(copy_email.state, EmailState::Failed);
    assert_eq!(copy_email.attempts, 2);
    let letter_state = ledger.letter(letter).expect("read").expect("letter").state;
    assert_eq!(letter_state, LetterState::Uncertain);

    // Not resent by a plain send; resent deliberately, with the same Message-ID.
    let first_id = ledger.email(letter).expect("read").expect("e").message_id;
    let plain = send_queue(&mut ledger, &config, &mailer, SendOptions::default()).expect("send");
    assert!(plain.sent.is_empty());
    let resend = SendOptions {
        resend_uncertain: true,
        ..SendOptions::default()
    };
    let report = send_queue(&mut ledger, &config, &mailer, resend).expect("send");
    assert_eq!(report.sent.len(), 1);
    let email = ledger.email(letter).expect("read").expect("email");
    assert_eq!(email.state, EmailState::Sent);
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
    let report = send_queue(&mut ledger, &config, &mailer, SendOptions::default()).expect("send");
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
    let report = send_queue(&mut ledger, &config, &mailer, SendOptions::default()).expect("send");
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
    let report = send_queue(&mut ledger, &config, &failing, SendOptions::default()).expect("send");
    assert_eq!(report.uncertain.len(), 2);
}
