//! `missive history` and `missive mark`: reading and correcting the ledger.

use std::collections::BTreeMap;
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::Result;
use clap::{Args, ValueEnum};

use missive::config::Config;
use missive::ledger::prelude::*;
use missive::ledger::{
    Approval, EmailRecord, LetterRecord, LetterState, Location, RunInfo, RunStatus, stamp,
};
use missive::letter::LetterKey;
use missive::report;
use missive::review::short_hash;

use super::Format;

/// Options of `missive history`.
#[derive(Args)]
pub(crate) struct HistoryArgs {
    /// The account whose letters to show.
    #[arg(value_name = "ACCOUNT_ID", required_unless_present_any = ["key", "runs"])]
    pub(crate) account_id: Option<String>,
    /// List every run instead: status, dates, output directory and why a failed run
    /// failed.
    #[arg(long, conflicts_with_all = ["account_id", "key"])]
    pub(crate) runs: bool,
    /// Show one letter instead (its full key).
    #[arg(long, value_name = "KEY")]
    pub(crate) key: Option<String>,
    /// A SQLite file or `postgres://user@host:port/db` (default: `[ledger] url`, else
    /// `out/missive.db`).
    #[arg(long, value_name = "FILE|URL")]
    pub(crate) ledger: Option<PathBuf>,
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
    /// A SQLite file or `postgres://user@host:port/db` (default: `[ledger] url`, else
    /// `out/missive.db`).
    #[arg(long, value_name = "FILE|URL")]
    pub(crate) ledger: Option<PathBuf>,
}

/// What `mark` can record.
#[derive(Clone, Copy, ValueEnum)]
pub(crate) enum MarkState {
    /// Came back undeliverable: the next plan treats it as not delivered and reissues it.
    Returned,
    /// Pulled by the mailroom before mailing: the next plan treats it as not sent.
    Cancelled,
    /// An uncertain email the mail server's log shows it accepted (needs --note).
    Sent,
    /// An uncertain email the mail server's log shows it never accepted: recorded failed,
    /// not resent (needs --note).
    Failed,
}

/// Prints an account's (or one letter's) letters, state changes and referrals.
pub(crate) fn history(config: &Config, args: HistoryArgs) -> Result<ExitCode> {
    let (location, name) = existing_ledger(args.ledger.as_deref(), config)?;
    let ledger = missive::ledger::open(&location)?;
    let ledger = &*ledger;
    if args.runs {
        return list_runs(ledger, args.format);
    }
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
            let mut run_ids: Vec<i64> = entries.iter().map(|(l, _)| l.run_id).collect();
            run_ids.sort_unstable();
            run_ids.dedup();
            let mut runs = Vec::new();
            for id in run_ids {
                runs.extend(ledger.run(id)?);
            }
            write_runs(&mut out, &runs)?;
        }
    }
    out.flush()?;
    Ok(
        if entries.is_empty() && referrals.is_empty() && treasury.is_empty() {
            eprintln!("no letters found in `{}`", name.display());
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
                stamp::text(&a.at),
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
pub(crate) fn mark(config: &Config, args: MarkArgs) -> Result<ExitCode> {
    let (location, name) = super::ledger_location(
        args.ledger.as_deref(),
        config,
        Path::new("out/missive.db"),
        false,
    )?;
    if let Location::File(path) = &location
        && !path.is_file()
    {
        anyhow::bail!("no ledger at `{}`", name.display());
    }
    // A run in progress owns the ledger: marking a letter it is rendering would stop it.
    let (mut ledger, _lock) = missive::ledger::open_locked(&location)?;
    let ledger = &mut *ledger;
    let key = LetterKey::from_text(&args.key);
    if ledger.letter(&key)?.is_none() {
        anyhow::bail!("no letter `{key}` in `{}`", name.display());
    }
    let state = match args.state {
        MarkState::Returned => LetterState::Returned,
        MarkState::Cancelled => LetterState::Cancelled,
        MarkState::Sent => return mark_email(ledger, &key, true, &args),
        MarkState::Failed => return mark_email(ledger, &key, false, &args),
    };
    let record = ledger.set_state(&key, state, None, &args.note)?;
    eprintln!("`{key}` is now {}", record.state.as_str());
    Ok(ExitCode::SUCCESS)
}

/// The ledger `history` reads, which must exist already (a SQLite file is not created).
fn existing_ledger(arg: Option<&Path>, config: &Config) -> Result<(Location, PathBuf)> {
    let (location, name) = super::ledger_location(arg, config, Path::new("out/missive.db"), false)?;
    if let Location::File(path) = &location
        && !path.is_file()
    {
        anyhow::bail!(
            "no ledger at `{}`\n\nhint: pass --ledger with the `missive.db` of your output directory",
            name.display()
        );
    }
    Ok((location, name))
}

/// `history --runs`: every run, newest last.
fn list_runs(ledger: &dyn Ledger, format: Format) -> Result<ExitCode> {
    let runs = ledger.runs()?;
    let stdout = io::stdout();
    let mut out = io::BufWriter::new(stdout.lock());
    match format {
        Format::Json => {
            serde_json::to_writer_pretty(&mut out, &serde_json::json!({ "runs": runs }))?;
            writeln!(out)?;
        }
        Format::Table => write_runs(&mut out, &runs)?,
    }
    out.flush()?;
    Ok(ExitCode::SUCCESS)
}

/// One line per run: id, status, start and end, dates, and why it failed.
fn write_runs(out: &mut impl Write, runs: &[RunInfo]) -> io::Result<()> {
    if runs.is_empty() {
        return Ok(());
    }
    writeln!(out, "\nRUNS ({})", runs.len())?;
    for run in runs {
        writeln!(
            out,
            "  run {} {}: started {}, ended {}, as of {}, mail date {}, output `{}`{}",
            run.id,
            run.status,
            stamp::text(&run.started_at),
            run.finished_at
                .as_ref()
                .map_or_else(|| "-".to_owned(), stamp::text),
            run.as_of,
            run.mail_date,
            report::escape(&run.out_dir),
            match (&run.failure, run.status) {
                (Some(why), RunStatus::Failed) => format!("; failed: {}", report::escape(why)),
                (Some(why), _) => format!("; had failed: {}", report::escape(why)),
                (None, _) => String::new(),
            }
        )?;
    }
    Ok(())
}

/// Resolves an uncertain email by hand: who looked at the server's log must say so.
fn mark_email(
    ledger: &mut dyn Ledger,
    key: &LetterKey,
    sent: bool,
    args: &MarkArgs,
) -> Result<ExitCode> {
    if args.note.trim().is_empty() {
        anyhow::bail!(
            "marking an email sent or failed needs --note: who checked the mail server's log, and what it showed"
        );
    }
    let user = std::env::var("USER")
        .or_else(|_| std::env::var("LOGNAME"))
        .unwrap_or_else(|_| "unknown user".to_owned());
    let detail = format!(
        "marked {} by hand by {user} after checking the mail server's log: {}",
        if sent { "sent" } else { "failed (not resent)" },
        args.note.trim()
    );
    let email = ledger.resolve_uncertain(key, sent, &detail)?;
    eprintln!("the email of `{key}` is now {}", email.state);
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
