//! The `missive` command line: parses arguments, calls the library, maps outcomes to exit
//! statuses (0 all planned, 1 some accounts or letters had errors, 2 nothing could run).

mod cmd;

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Result;
use clap::{Parser, Subcommand};
use missive::config::Config;

use cmd::approve::ApproveArgs;
use cmd::check::CheckArgs;
use cmd::history::{HistoryArgs, MarkArgs};
use cmd::plan::PlanArgs;
use cmd::preview::PreviewArgs;
use cmd::release::ReleaseArgs;
use cmd::render::RenderArgs;
use cmd::run::RunArgs;
use cmd::send::SendArgs;
use cmd::serve::ServeArgs;

/// glibc's allocator spends ~40% of `plan`'s time in malloc/free across threads;
/// mimalloc roughly halves that (docs/performance.md).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// Notices for a state revenue department's refund-offset program.
#[derive(Parser)]
#[command(name = "missive", version, about, propagate_version = true)]
struct Cli {
    /// Configuration file (default: ./missive.toml if present, else the built-in one).
    #[arg(long, global = true, value_name = "FILE")]
    config: Option<PathBuf>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Decide which letters are due and print the plan; writes nothing.
    Plan(PlanArgs),
    /// Plan, then write one PDF per planned letter and `render.json` into `--out`.
    Render(RenderArgs),
    /// A production run: plan against the ledger, record and render every due letter
    /// once, write referrals. Safe to kill and rerun.
    Run(RunArgs),
    /// Every letter and state change of an account (or one letter) from the ledger.
    History(HistoryArgs),
    /// Record that a letter came back undeliverable or was pulled by the mailroom, or what
    /// the mail server's log shows about an uncertain email (sent or failed).
    Mark(MarkArgs),
    /// Render one letter from a sample account to PDF or PNG pages (`NAME.png` for one
    /// page, else `NAME-1.png`, `NAME-2.png`, …).
    Preview(PreviewArgs),
    /// The reviewers' web app on 127.0.0.1: every letter as the taxpayer sees it, its
    /// template, variables, changes since approval, and an Approve form.
    Serve(ServeArgs),
    /// Approve the exact version of a kind's template on disk (or `--list` approvals);
    /// `run` renders only approved versions.
    Approve(ApproveArgs),
    /// Lint every template with every sample letter: unknown variables, required facts,
    /// rendering, readability. Exit 1 on any error.
    Check(CheckArgs),
    /// Send the rendered email letters not yet sent, each exactly once (or, with
    /// --to-dir, write them as .eml files).
    Send(SendArgs),
    /// Record that a printed batch went to the mail: the batch and its letters become
    /// `released`.
    Release(ReleaseArgs),
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match run(cli) {
        Ok(code) => code,
        Err(err) => {
            // Errors quote input (paths, ids): never let it drive the terminal.
            eprintln!(
                "error: {}",
                missive::report::escape_lines(&format!("{err:#}"))
            );
            ExitCode::from(2)
        }
    }
}

fn run(cli: Cli) -> Result<ExitCode> {
    let loaded = Config::load(cli.config.as_deref())?;
    match cli.command {
        Command::Plan(args) => cmd::plan::plan(&loaded.config, args),
        Command::Render(args) => cmd::render::render(&loaded.config, args),
        Command::Run(args) => cmd::run::run_command(&loaded, args),
        Command::History(args) => cmd::history::history(&loaded.config, args),
        Command::Mark(args) => cmd::history::mark(&loaded.config, args),
        Command::Preview(args) => cmd::preview::preview(&loaded.config, args),
        Command::Serve(args) => cmd::serve::serve(&loaded.config, args),
        Command::Approve(args) => cmd::approve::approve(&loaded.config, args),
        Command::Check(args) => cmd::check::check(&loaded.config, args),
        Command::Send(args) => cmd::send::send(&loaded.config, args),
        Command::Release(args) => cmd::release::release(&loaded.config, args),
    }
}
