//! Outgoing email: each SMTP transaction is recorded once, before and after; an interrupted
//! send waits for a person.

use std::path::PathBuf;

use super::{Backend, file_of, intent, start};
use crate::ledger::*;
use crate::letter::{Channel, LetterKey};

/// An intent to offset that goes by email.
fn by_email(account: &str) -> PlannedLetter {
    let mut letter = intent(account);
    letter.channel = Channel::Email;
    letter.mail_class = None;
    letter
}

fn email(letter: &PlannedLetter, role: EmailRole, subject: &str) -> NewEmail {
    NewEmail {
        key: letter.key.clone(),
        role,
        to_address: format!("{}@example.com", letter.account_id),
        to_name: letter.account_id.clone(),
        subject: subject.to_owned(),
        text: "text".to_owned(),
        html: "<p>html</p>".to_owned(),
        attach_pdf: true,
    }
}

fn keys(queue: &[QueuedEmail]) -> Vec<LetterKey> {
    queue.iter().map(|q| q.email.key.clone()).collect()
}

fn letter_state(ledger: &impl Ledger, key: &LetterKey) -> LetterState {
    ledger.letter(key).expect("read").expect("letter").state
}

fn email_of(ledger: &impl Ledger, key: &LetterKey) -> EmailRecord {
    ledger.email(key).expect("read").expect("email")
}

pub(super) fn an_email_is_sent_once_and_an_interrupted_send_waits_for_a_person<L: Backend>() {
    let (_home, mut ledger) = L::fresh();
    let run = start(&mut ledger);
    let [a, b, c] = [by_email("A"), by_email("B"), intent("C")];
    let letters = [a.clone(), b.clone(), c.clone()];
    let planned = ledger.record_planned(run.id, &letters).expect("plan");
    let emails = [
        email(&a, EmailRole::Letter, "a"),
        email(&b, EmailRole::Letter, "b"),
        email(&c, EmailRole::Copy, "c"),
    ];
    ledger
        .record_emails(run.id, &planned, &emails)
        .expect("emails");
    assert!(
        ledger.email_queue(None, false).expect("queue").is_empty(),
        "nothing is sent before its letter is rendered"
    );
    let files: Vec<RenderedFile> = letters.iter().map(file_of).collect();
    ledger.record_rendered(run.id, &files).expect("render");
    let queue = ledger.email_queue(Some(run.id), false).expect("queue");
    assert_eq!(keys(&queue), [a.key.clone(), b.key.clone(), c.key.clone()]);
    assert_eq!(queue[0].email, emails[0]);
    assert_eq!(
        (queue[0].state, queue[0].attempts),
        (EmailState::Pending, 0)
    );
    assert_eq!(
        queue[0].pdf_path,
        Some(PathBuf::from("out").join(&files[0].file))
    );
    assert!(
        ledger
            .email_queue(Some(99), false)
            .expect("queue")
            .is_empty()
    );

    let sends: Vec<(LetterKey, String)> = letters
        .iter()
        .map(|l| (l.key.clone(), format!("<{}@missive>", l.account_id)))
        .collect();
    ledger.begin_sending(Some(run.id), &sends).expect("sending");
    assert_eq!(letter_state(&ledger, &a.key), LetterState::Sending);
    assert_eq!(
        letter_state(&ledger, &c.key),
        LetterState::Rendered,
        "a copy"
    );
    let sending = email_of(&ledger, &b.key);
    assert_eq!(
        (
            sending.state,
            sending.attempts,
            sending.message_id.as_deref()
        ),
        (EmailState::Sending, 1, Some("<B@missive>"))
    );
    assert!(ledger.email_queue(None, true).expect("queue").is_empty());

    let outcomes = [
        (
            a.key.clone(),
            SendRecord::Sent {
                reply: "250 queued".to_owned(),
            },
        ),
        (
            c.key.clone(),
            SendRecord::Failed {
                reason: "550 no such user".to_owned(),
                fallback_print: true,
            },
        ),
    ];
    ledger.record_sends(Some(run.id), &outcomes).expect("sends");
    let sent = email_of(&ledger, &a.key);
    assert_eq!(
        (sent.state, sent.reply.as_deref()),
        (EmailState::Sent, Some("250 queued"))
    );
    assert!(sent.sent_at.is_some());
    assert_eq!(letter_state(&ledger, &a.key), LetterState::Sent);
    let last = ledger
        .events_of(&a.key)
        .expect("events")
        .pop()
        .expect("event");
    assert!(last.detail.contains("250 queued"), "{}", last.detail);
    let refused = email_of(&ledger, &c.key);
    assert_eq!(
        (
            refused.state,
            refused.fallback_print,
            refused.last_error.as_deref()
        ),
        (EmailState::Failed, true, Some("550 no such user"))
    );
    assert_eq!(letter_state(&ledger, &c.key), LetterState::Rendered);
    assert_eq!(
        ledger.print_fallbacks().expect("fallbacks"),
        std::slice::from_ref(&c.key)
    );

    // B's process died mid-transaction: uncertain, never resent by itself.
    assert_eq!(
        ledger.recover_interrupted_sends().expect("recover"),
        std::slice::from_ref(&b.key)
    );
    assert!(
        ledger
            .recover_interrupted_sends()
            .expect("again")
            .is_empty()
    );
    assert_eq!(letter_state(&ledger, &b.key), LetterState::Uncertain);
    assert_eq!(
        ledger.uncertain_emails().expect("uncertain"),
        std::slice::from_ref(&b.key)
    );
    assert!(ledger.email_queue(None, false).expect("queue").is_empty());
    assert_eq!(
        keys(&ledger.email_queue(None, true).expect("resend")),
        std::slice::from_ref(&b.key)
    );

    let err = ledger
        .resolve_uncertain(&a.key, true, "checked")
        .expect_err("a is sent");
    assert!(
        matches!(
            err,
            LedgerError::EmailNotUncertain {
                state: EmailState::Sent,
                ..
            }
        ),
        "{err:?}"
    );
    let resolved = ledger
        .resolve_uncertain(&b.key, false, "not in the server's log")
        .expect("resolve");
    assert_eq!(resolved.state, EmailState::Failed);
    assert_eq!(resolved.sent_at, None);
    assert_eq!(letter_state(&ledger, &b.key), LetterState::Failed);
    let last = ledger
        .events_of(&b.key)
        .expect("events")
        .pop()
        .expect("event");
    assert_eq!(
        (last.from_state, last.to_state, last.detail.as_str()),
        (
            Some(LetterState::Uncertain),
            LetterState::Failed,
            "not in the server's log"
        )
    );
    assert!(ledger.uncertain_emails().expect("uncertain").is_empty());
}

pub(super) fn a_replanned_letter_replaces_its_pending_email_but_never_one_in_flight<L: Backend>() {
    let (_home, mut ledger) = L::fresh();
    let run = start(&mut ledger);
    let [a, b] = [by_email("A"), by_email("B")];
    let planned = ledger
        .record_planned(run.id, &[a.clone(), b.clone()])
        .expect("plan");
    let first = [
        email(&a, EmailRole::Letter, "first"),
        email(&b, EmailRole::Letter, "first"),
    ];
    ledger
        .record_emails(run.id, &planned, &first)
        .expect("emails");
    ledger
        .record_rendered(run.id, &[file_of(&a), file_of(&b)])
        .expect("render");
    ledger
        .begin_sending(Some(run.id), &[(b.key.clone(), "<b@missive>".to_owned())])
        .expect("sending");

    let second = [
        email(&a, EmailRole::Letter, "second"),
        email(&b, EmailRole::Letter, "second"),
    ];
    ledger
        .record_emails(run.id, &planned, &second)
        .expect("emails again");
    assert_eq!(email_of(&ledger, &a.key).subject, "second");
    let in_flight = email_of(&ledger, &b.key);
    assert_eq!(
        (
            in_flight.subject.as_str(),
            in_flight.state,
            in_flight.attempts
        ),
        ("first", EmailState::Sending, 1)
    );

    // A no longer goes by email: its pending email is cancelled, B's is left alone.
    ledger
        .record_emails(run.id, &planned, &[])
        .expect("no emails");
    let cancelled = email_of(&ledger, &a.key);
    assert_eq!(cancelled.state, EmailState::Cancelled);
    assert_eq!(
        cancelled.last_error.as_deref(),
        Some("the letter no longer goes by email")
    );
    assert_eq!(email_of(&ledger, &b.key).state, EmailState::Sending);
    assert!(matches!(
        ledger.record_emails(99, &planned, &second),
        Err(LedgerError::UnknownRun { run_id: 99 })
    ));
}
