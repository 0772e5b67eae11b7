//! Dispatch unit tests: composing and message ids. The once-only protocol against a
//! scripted mailer and lettre's stub transport is tested with the run's send step
//! (`crate::runner`); the real SMTP server tests are in `tests/email.rs`.

use std::collections::HashMap;
use std::path::Path;

use super::*;
use crate::account::Account;
use crate::config::{BUILT_IN, Config};
use crate::decide::{DecideContext, DueLetter};
use crate::letter::Channel;

/// The built-in configuration, fast retries, with or without the PDF attached.
pub(crate) fn config(attach_pdf: bool) -> Config {
    let mut config = Config::parse(BUILT_IN).expect("built-in config");
    config.email.attach_pdf = attach_pdf;
    config.email.retry_backoff_ms = 1;
    config.email.rate_per_second = 10_000.0;
    config
}

/// The accounts and due letters of `tests/fixtures/email`.
pub(crate) fn fixture(config: &Config) -> (HashMap<String, Account>, Vec<DueLetter>) {
    planned(config, "tests/fixtures/email/accounts", |_| {})
}

/// The accounts (each changed by `edit` after planning) and due letters of `dir`, planned
/// at 2026-12-01.
pub(crate) fn planned(
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

/// The email templates of the repository.
pub(crate) fn composer(config: &Config) -> EmailComposer {
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
        .compose(account, &letter, Role::Letter)
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
            (Channel::Email, _) => Role::Letter,
            (_, true) => Role::Copy,
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
            Role::Copy
        } else {
            Role::Letter
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
        if role == Role::Copy {
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
