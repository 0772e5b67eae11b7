//! `missive approve`: a reviewer approves the exact version of a kind's template on disk,
//! in one language (`--language es`).

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{Context, Result};
use clap::Args;
use missive::compose::{Composer, template_name_in};
use missive::config::Config;
use missive::ledger::{Ledger, NewApproval, stamp};
use missive::letter::LetterKind;
use missive::review::{ApprovalState, short_hash};

use super::project_dir;

/// Options of `missive approve`.
#[derive(Args)]
pub(crate) struct ApproveArgs {
    /// The kind whose template, as it is on disk now (with its partials and layout), is
    /// approved.
    #[arg(value_enum, value_name = "KIND", required_unless_present = "list")]
    pub(crate) kind: Option<LetterKind>,
    /// The language of the template approved (`en`, `es`): each language's template needs
    /// its own approval.
    #[arg(long, value_name = "CODE", default_value = "en")]
    pub(crate) language: String,
    /// Who approves (recorded in the ledger).
    #[arg(long, value_name = "NAME", required_unless_present = "list")]
    pub(crate) reviewer: Option<String>,
    /// A note for the record (what was checked).
    #[arg(long, default_value = "")]
    pub(crate) note: String,
    /// List every template with its approval state, and every approval, instead.
    #[arg(long, conflicts_with_all = ["kind", "reviewer"])]
    pub(crate) list: bool,
    /// A SQLite file or `postgres://user@host:port/db` (default: `[ledger] url`, else
    /// `out/missive.db`).
    #[arg(long, value_name = "FILE|URL")]
    pub(crate) ledger: Option<PathBuf>,
    /// Templates directory (default: ./templates, else the one missive was built with).
    #[arg(long, value_name = "DIR")]
    pub(crate) templates: Option<PathBuf>,
}

/// Records an approval, or lists them.
pub(crate) fn approve(config: &Config, args: ApproveArgs) -> Result<ExitCode> {
    let composer = Composer::load(&project_dir(args.templates, "templates"), config)?;
    let default = std::path::Path::new("out/missive.db");
    let (location, name) = super::ledger_location(args.ledger.as_deref(), config, default, true)?;
    let mut ledger = missive::ledger::open(&location)?;
    let ledger = &mut *ledger;
    let (Some(kind), Some(reviewer)) = (args.kind, args.reviewer) else {
        return list(&composer, ledger);
    };
    let lang = super::language_arg(&args.language)?;
    let template = template_name_in(kind, lang);
    let sha = composer
        .template_hashes()
        .get(&template)
        .cloned()
        .with_context(|| format!("no template `{template}`"))?;
    let sources = composer
        .sources(&template)
        .with_context(|| format!("no template `{template}`"))?;
    let approval = ledger.record_approval(&NewApproval {
        template: template.clone(),
        template_sha256: sha.clone(),
        reviewer,
        note: args.note,
        sources,
    })?;
    println!(
        "approved `{template}` version {} (sha256 {sha}) by {} at {} (approval {}) in `{}`",
        short_hash(&sha),
        approval.reviewer,
        stamp::text(&approval.at),
        approval.id,
        name.display()
    );
    Ok(ExitCode::SUCCESS)
}

fn list(composer: &Composer, ledger: &dyn Ledger) -> Result<ExitCode> {
    println!("{:<36} {:<38} {:<12}", "template", "state", "version");
    for (template, sha) in composer.template_hashes() {
        let state = ApprovalState::of(ledger, template, sha)?;
        println!(
            "{template:<36} {:<38} {:<12}",
            state.label(),
            short_hash(sha)
        );
    }
    println!();
    println!(
        "{:<5} {:<36} {:<12} {:<24} {:<20} note",
        "id", "template", "version", "at", "reviewer"
    );
    for a in ledger.approvals(None)? {
        println!(
            "{:<5} {:<36} {:<12} {:<24} {:<20} {}",
            a.id,
            a.template,
            short_hash(&a.template_sha256),
            stamp::text(&a.at),
            a.reviewer,
            a.note
        );
    }
    Ok(ExitCode::SUCCESS)
}
