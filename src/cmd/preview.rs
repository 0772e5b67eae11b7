//! `missive preview`: one letter from a sample account, as PDF or PNG pages, in seconds.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{Context, Result, bail};
use chrono::NaiveDate;
use clap::Args;
use missive::compose::Composer;
use missive::config::Config;
use missive::language::Language;
use missive::render::{LetterSource, Renderer};
use missive::review::{LetterType, SampleLetter, Samples, sample_as_of};

use super::{AssetArgs, Assets, parse_date, project_dir};

/// Options of `missive preview`.
#[derive(Args)]
pub(crate) struct PreviewArgs {
    /// The letter: KIND or KIND/VARIANT, e.g. `intent_to_offset` or `offset_notice/state`.
    #[arg(value_name = "KIND[/VARIANT]")]
    pub(crate) letter: String,
    /// Account file (or directory, or `.jsonl`) to write the letter for (default: the first
    /// account in `samples/accounts` that has such a letter).
    #[arg(long, value_name = "FILE")]
    pub(crate) account: Option<PathBuf>,
    /// The date the account is planned at (default: 2026-12-01, the samples' date).
    #[arg(long, value_name = "DATE", value_parser = parse_date)]
    pub(crate) as_of: Option<NaiveDate>,
    /// Output file: `NAME.pdf`, or `NAME.png` for PNG pages (`NAME.png` for a one-page
    /// letter, else `NAME-1.png`, `NAME-2.png`, …). Default: `preview-KIND[-VARIANT].pdf`.
    #[arg(long, value_name = "FILE")]
    pub(crate) out: Option<PathBuf>,
    /// Write the letter in this language (`en`, `es`) whatever the account asks for
    /// (default: the account's language).
    #[arg(long, value_name = "CODE")]
    pub(crate) language: Option<String>,
    /// PNG scale in pixels per point (2 = 144 dpi).
    #[arg(long, value_name = "N", default_value_t = 2.0)]
    pub(crate) scale: f32,
    #[command(flatten)]
    pub(crate) assets: AssetArgs,
}

/// The render job of one sample letter, in `lang` (default: its account's language);
/// `Err` is the compose error.
pub(crate) fn sample_job(
    composer: &Composer,
    config: &Config,
    sample: &SampleLetter,
    lang: Option<Language>,
) -> Result<LetterSource> {
    let lang = lang.unwrap_or_else(|| Language::of(&sample.account));
    let composed = composer
        .compose_in(lang, &sample.account, &sample.letter, None)
        .with_context(|| format!("failed to compose `{}`", sample.letter.key))?;
    Ok(LetterSource {
        main: composed.source,
        date: composed.date,
        title: composed.title,
        author: config.agency.name.clone(),
        lang: composed.lang,
    })
}

/// Renders one letter of the requested type to `--out`.
pub(crate) fn preview(config: &Config, args: PreviewArgs) -> Result<ExitCode> {
    let letter_type = LetterType::parse(&args.letter)?;
    let lang = args
        .language
        .as_deref()
        .map(super::language_arg)
        .transpose()?;
    let accounts = args
        .account
        .clone()
        .unwrap_or_else(|| project_dir(None, "samples/accounts"));
    let samples = Samples::load(&accounts, config, args.as_of.unwrap_or_else(sample_as_of))?;
    for err in &samples.errors {
        eprintln!("error: {err}");
    }
    let sample = samples.pick(letter_type, None)?;
    let assets = Assets::load(config, args.assets)?;
    let job = sample_job(&assets.composer, config, sample, lang)?;
    let out = args.out.unwrap_or_else(|| {
        PathBuf::from(format!(
            "preview-{}.pdf",
            letter_type.to_string().replace('/', "-")
        ))
    });
    let written = write_preview(&assets.renderer, &job, &out, args.scale)?;
    eprintln!(
        "{} from account {} ({}): {}",
        sample.letter.key,
        sample.account.account_id,
        sample.source,
        written
            .iter()
            .map(|p| format!("`{}`", p.display()))
            .collect::<Vec<_>>()
            .join(", ")
    );
    Ok(ExitCode::SUCCESS)
}

/// Writes the PDF, or the PNG pages, and returns the files written.
fn write_preview(
    renderer: &Renderer,
    job: &LetterSource,
    out: &Path,
    scale: f32,
) -> Result<Vec<PathBuf>> {
    let extension = out
        .extension()
        .and_then(|e| e.to_str())
        .map(str::to_ascii_lowercase);
    let write = |path: &Path, bytes: &[u8]| {
        std::fs::write(path, bytes).with_context(|| format!("failed to write `{}`", path.display()))
    };
    match extension.as_deref() {
        Some("pdf") => {
            let pdf = renderer.render_pdf(job)?;
            for warning in &pdf.warnings {
                eprintln!("warning: {warning}");
            }
            write(out, &pdf.bytes)?;
            Ok(vec![out.to_owned()])
        }
        Some("png") => {
            let pages = renderer.render_png(job, scale)?;
            let stem = out
                .file_stem()
                .map(|s| s.to_string_lossy().into_owned())
                .unwrap_or_default();
            let mut written = Vec::new();
            for (i, page) in pages.iter().enumerate() {
                let path = if pages.len() == 1 {
                    out.to_owned()
                } else {
                    out.with_file_name(format!("{stem}-{}.png", i + 1))
                };
                write(&path, page)?;
                written.push(path);
            }
            Ok(written)
        }
        _ => bail!(
            "`{}`: the output must end in `.pdf` or `.png`",
            out.display()
        ),
    }
}
