//! `missive history` and `missive mark`: reading and correcting the ledger.

use std::collections::BTreeMap;
use std::io::{self, Write};
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Result;
use clap::{Args, ValueEnum};

use missive::ledger::{Approval, EmailRecord, Ledger, LetterRecord, LetterState, SqliteLedger};
use missive::letter::LetterKey;
use missive::report;
use missive::review::short_hash;

use super::Format;

/// Options of `missive history`.
#[derive(Args)]
pub(crate) struct HistoryArgs {
    /// The account whose letters to show.
    #[arg(value_name = "ACCOUNT_ID", required_unless_present = "key")]
    pub(crate) account_id: Option<String>,
    /// Show one letter instead (its full key).
    #[arg(long, value_name = "KEY")]
    pub(crate) key: Option<String>,
    /// Ledger file.
    #[arg(long, value_name = "FILE", default_value = "out/missive.db")]
    pub(crate) ledger: PathBuf,
    /// Output format.
    #[arg(long, value_enum, default_value_t = Format::Table)]
    pub(crate) format: Format,
}

/// Options of `missive mark`.
#[derive(Args)]
pub(crate) struct MarkArgs {
    /// The letter's key, e.g. `CT-0001001/intent_to_offset/L1`.
    #[arg(value_name = "KEY")]
    pub(crate) key: String,
    /// What happened to it.
    #[arg(value_enum, value_name = "STATE")]
    pub(crate) state: MarkState,
    /// A note for the history (who, why).
    #[arg(long, default_value = "")]
    pub(crate) note: String,
    /// Ledger file.
    #[arg(long, value_name = "FILE", default_value = "out/missive.db")]
    pub(crate) ledger: PathBuf,
}

/// What `mark` can record.
#[derive(Clone, Copy, ValueEnum)]
pub(crate) enum MarkState {
    /// Came back undeliverable: the next plan treats it as not delivered and reissues it.
    Returned,
    /// Pulled by the mailroom before mailing: the next plan treats it as not sent.
    Cancelled,
}

/// Prints an account's (or one letter's) letters, state changes and referrals.
pub(crate) fn history(args: HistoryArgs) -> Result<ExitCode> {
    if !args.ledger.is_file() {
        anyhow::bail!(
            "no ledger at `{}`\n\nhint: pass --ledger with the `missive.db` of your output directory",
            args.ledger.display()
        );
    }
    let ledger = SqliteLedger::open(&args.ledger)?;
    let letters = match (&args.key, &args.account_id) {
        (Some(key), _) => ledger
            .letter(&LetterKey::from_text(key))?
            .into_iter()
            .collect::<Vec<_>>(),
        (None, Some(account)) => ledger.letters_of_account(account)?,
        (None, None) => Vec::new(),
    };
    let referrals = match &args.account_id {
        Some(account) => ledger.referrals_of_account(account)?,
        None => Vec::new(),
    };
    // Every referral and update sent to the Treasury Offset Program, with run and reason.
    let treasury = match &args.account_id {
        Some(account) => ledger.treasury_actions(None, Some(account))?,
        None => Vec::new(),
    };
    let mut entries = Vec::with_capacity(letters.len());
    let mut emails = Vec::new();
    for letter in letters {
        let events = ledger.events_of(&letter.key)?;
        emails.extend(ledger.email(&letter.key)?);
        entries.push((letter, events));
    }
    // The approval of each template version the letters were rendered with.
    let mut approvals = BTreeMap::new();
    for (letter, _) in &entries {
        let version = template_version(letter);
        if let (Some(template), Some(sha)) = &version
            && !approvals.contains_key(&version)
        {
            approvals.insert(version.clone(), ledger.approval_of(template, sha)?);
        }
    }
    let stdout = io::stdout();
    let mut out = io::BufWriter::new(stdout.lock());
    match args.format {
        Format::Json => {
            let letters: Vec<serde_json::Value> = entries
                .iter()
                .map(|(letter, events)| {
                    let mut value = serde_json::to_value(letter).unwrap_or_default();
                    if let Some(map) = value.as_object_mut() {
                        map.insert(
                            "events".into(),
                            serde_json::to_value(events).unwrap_or_default(),
                        );
                        let approval = approvals.get(&template_version(letter));
                        map.insert(
                            "approval".into(),
                            serde_json::to_value(approval).unwrap_or_default(),
                        );
                        let email = emails.iter().find(|e| e.key == letter.key);
                        map.insert(
                            "email".into(),
                            serde_json::to_value(email).unwrap_or_default(),
                        );
                    }
                    value
                })
                .collect();
            let doc = serde_json::json!({
                "account_id": args.account_id,
                "letters": letters,
                "referrals": referrals,
                "treasury": treasury,
            });
            serde_json::to_writer_pretty(&mut out, &doc)?;
            writeln!(out)?;
        }
        Format::Table => {
            report::write_history(&mut out, &entries, &referrals)?;
            report::write_treasury_history(&mut out, &treasury)?;
            write_versions(&mut out, &approvals)?;
            write_emails(&mut out, &emails)?;
        }
    }
    out.flush()?;
    Ok(
        if entries.is_empty() && referrals.is_empty() && treasury.is_empty() {
            eprintln!("no letters found in `{}`", args.ledger.display());
            ExitCode::from(1)
        } else {
            ExitCode::SUCCESS
        },
    )
}

/// A letter's template and content hash, when it was rendered.
type Version = (Option<String>, Option<String>);

fn template_version(letter: &LetterRecord) -> Version {
    (letter.template.clone(), letter.template_sha256.clone())
}

/// Who approved each template version the letters shown were rendered with.
fn write_versions(
    out: &mut impl Write,
    approvals: &BTreeMap<Version, Option<Approval>>,
) -> io::Result<()> {
    if approvals.is_empty() {
        return Ok(());
    }
    writeln!(out, "\nTEMPLATE VERSIONS")?;
    for ((template, sha), approval) in approvals {
        let (template, sha) = (
            template.as_deref().unwrap_or("-"),
            sha.as_deref().unwrap_or("-"),
        );
        match approval {
            Some(a) => writeln!(
                out,
                "  {template} {}: approved by {} at {} (approval {}){}",
                short_hash(sha),
                a.reviewer,
                a.at,
                a.id,
                if a.note.is_empty() {
                    String::new()
                } else {
                    format!(": {}", a.note)
                }
            )?,
            None => writeln!(out, "  {template} {}: not approved", short_hash(sha))?,
        }
    }
    Ok(())
}

/// Records a letter as returned or cancelled, under the run lock.
pub(crate) fn mark(args: MarkArgs) -> Result<ExitCode> {
    if !args.ledger.is_file() {
        anyhow::bail!("no ledger at `{}`", args.ledger.display());
    }
    let mut ledger = SqliteLedger::open(&args.ledger)?;
    // A run in progress owns the ledger: marking a letter it is rendering would stop it.
    let _lock = ledger.lock_for_run()?;
    let key = LetterKey::from_text(&args.key);
    let state = match args.state {
        MarkState::Returned => LetterState::Returned,
        MarkState::Cancelled => LetterState::Cancelled,
    };
    if ledger.letter(&key)?.is_none() {
        anyhow::bail!("no letter `{key}` in `{}`", args.ledger.display());
    }
    let record = ledger.set_state(&key, state, None, &args.note)?;
    eprintln!("`{key}` is now {}", record.state.as_str());
    Ok(ExitCode::SUCCESS)
}

/// The emails of the letters shown (the letter itself, or an intent to offset's email
/// copy): state, attempts, Message-ID and the server's reply or last error.
fn write_emails(out: &mut impl Write, emails: &[EmailRecord]) -> io::Result<()> {
    if emails.is_empty() {
        return Ok(());
    }
    writeln!(out, "\nEMAILS ({})", emails.len())?;
    for e in emails {
        writeln!(
            out,
            "  {} ({}) to {}: {}, {} attempt(s), Message-ID {}{}",
            e.key,
            e.role,
            e.to_address,
            e.state,
            e.attempts,
            e.message_id.as_deref().unwrap_or("-"),
            match (&e.reply, &e.last_error) {
                (Some(reply), _) => format!(", server said: {reply}"),
                (None, Some(error)) => format!(", last error: {error}"),
                (None, None) => String::new(),
            }
        )?;
    }
    Ok(())
}
