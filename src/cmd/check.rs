//! `missive check`: lints every template by writing every sample letter with it.
//!
//! Errors (exit 1): a template that does not load, a letter that does not compose (a
//! variable used but never provided, a bad value) or does not render, a variable that no
//! sample letter's context provides (even in a branch no sample takes), a required fact a
//! letter does not state, a rendered letter whose text (read back with `pdftotext`) says
//! something its plan does not (`missive::review::facts`). Warnings: a body text above grade 8 (Flesch-Kincaid), a Spanish one below
//! 60 (Fernández-Huerta), a letter type no sample account has. Every sample letter is
//! written with every language's template (required facts, variables, readability); the
//! one in its account's language is rendered and held to the plan. The rules are in `docs/review.md`.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Result;
use chrono::NaiveDate;
use clap::Args;
use missive::compose::{Composer, template_name_in};
use missive::config::Config;
use missive::dispatch::EmailComposer;
use missive::dispatch::Role;
use missive::language::Language;
use missive::letter::Channel;
use missive::letter::LetterKey;
use missive::render::LetterSource;
use missive::review::facts::{TextError, check_account, check_email, pdf_text};
use missive::review::legibilidad;
use missive::review::lint::{MAX_GRADE, Readability, body_text, missing_facts};
use missive::review::vars::{lookup, variables};
use missive::review::{LetterType, Samples, sample_as_of};
use rayon::prelude::*;
use serde_json::Value;

use super::preview::sample_job;
use super::{AssetArgs, Assets, parse_date, project_dir};

/// Options of `missive check`.
#[derive(Args)]
pub(crate) struct CheckArgs {
    /// Accounts to write every planned letter of (default: `samples/accounts`).
    #[arg(long, value_name = "PATH")]
    pub(crate) accounts: Option<PathBuf>,
    /// The date the accounts are planned at (default: 2026-12-01, the samples' date).
    #[arg(long, value_name = "DATE", value_parser = parse_date)]
    pub(crate) as_of: Option<NaiveDate>,
    #[command(flatten)]
    pub(crate) assets: AssetArgs,
}

/// Errors and warnings found, printed as they come.
#[derive(Default)]
struct Findings {
    errors: usize,
    warnings: usize,
}

impl Findings {
    fn error(&mut self, message: String) {
        eprintln!("error: {message}");
        self.errors += 1;
    }
    fn warning(&mut self, message: String) {
        eprintln!("warning: {message}");
        self.warnings += 1;
    }
}

/// One line of the summary table: a letter type, its sample letters, the hardest to read.
struct TypeSummary {
    letter_type: LetterType,
    count: usize,
    /// Highest Flesch-Kincaid grade of the English letters.
    worst: Option<(f64, String)>,
    /// Lowest Fernández-Huerta score of the Spanish letters.
    worst_es: Option<(f64, String)>,
}

/// Runs every check; exit 1 when any found an error.
pub(crate) fn check(config: &Config, args: CheckArgs) -> Result<ExitCode> {
    let mut findings = Findings::default();
    let templates = project_dir(args.assets.templates.clone(), "templates");
    let assets = match Assets::load(config, args.assets) {
        Ok(assets) => assets,
        Err(err) => {
            findings.error(format!("{err:#}"));
            return Ok(ExitCode::from(1));
        }
    };
    let accounts = args
        .accounts
        .unwrap_or_else(|| project_dir(None, "samples/accounts"));
    let samples = Samples::load(&accounts, config, args.as_of.unwrap_or_else(sample_as_of))?;
    for err in &samples.errors {
        findings.error(format!("sample {err}"));
    }
    let composer = &assets.composer;
    // Per kind: the context of every sample letter that composed, for the variable check.
    let mut contexts: BTreeMap<String, Vec<Value>> = BTreeMap::new();
    let mut jobs: Vec<(String, LetterSource)> = Vec::new();
    let mut grades: Vec<TypeSummary> = Vec::new();
    for letter_type in LetterType::all() {
        let mut count = 0;
        let mut worst: Option<(f64, String)> = None;
        let mut worst_es: Option<(f64, String)> = None;
        for sample in samples.of_type(letter_type) {
            count += 1;
            let key = sample.letter.key.to_string();
            let own = Language::of(&sample.account);
            // Every language's template writes this sample letter: each must state the
            // required facts and compose; the account's own language is also rendered
            // and held to the plan.
            for lang in Language::ALL {
                let template = template_name_in(sample.letter.kind, lang);
                let context = match composer.context_in(lang, &sample.account, &sample.letter) {
                    Ok(context) => context,
                    Err(err) => {
                        findings.error(format!("`{key}` ({lang}): {err}"));
                        continue;
                    }
                };
                let job = match sample_job(composer, config, sample, Some(lang)) {
                    Ok(job) => job,
                    Err(err) => {
                        findings.error(format!("`{key}` ({lang}): {err:#}"));
                        continue;
                    }
                };
                for (fact, missing) in missing_facts(
                    sample.letter.kind,
                    sample.letter.variant,
                    lang,
                    &context,
                    &job.main,
                ) {
                    findings.error(format!(
                        "`{key}` ({template}) does not state the {fact}: {missing}"
                    ));
                }
                let body = body_text(&job.main);
                match lang {
                    Language::En => {
                        let grade = Readability::of(&body).grade();
                        if worst.as_ref().is_none_or(|(g, _)| grade > *g) {
                            worst = Some((grade, key.clone()));
                        }
                    }
                    Language::Es => {
                        let score = legibilidad::score(&body);
                        if worst_es.as_ref().is_none_or(|(s, _)| score < *s) {
                            worst_es = Some((score, key.clone()));
                        }
                    }
                }
                contexts.entry(template).or_default().push(context);
                if lang == own {
                    jobs.push((key.clone(), job));
                }
            }
        }
        if count == 0 {
            findings.warning(format!(
                "no account in `{}` has a `{letter_type}` letter at as-of {}: it was not checked",
                accounts.display(),
                samples.as_of
            ));
        }
        if let Some((grade, key)) = &worst
            && *grade > MAX_GRADE
        {
            findings.warning(format!(
                "`{letter_type}` reads at grade {grade:.1} (Flesch-Kincaid, `{key}`), above {MAX_GRADE}"
            ));
        }
        if let Some((score, key)) = &worst_es
            && *score < legibilidad::MIN_SCORE
        {
            findings.warning(format!(
                "`{letter_type}` in Spanish scores {score:.1} (Fernández-Huerta, `{key}`), below {}",
                legibilidad::MIN_SCORE
            ));
        }
        grades.push(TypeSummary {
            letter_type,
            count,
            worst,
            worst_es,
        });
    }
    check_variables(composer, &contexts, &mut findings);
    let rendered = assets.renderer.render_many(
        &jobs.iter().map(|(_, job)| job.clone()).collect::<Vec<_>>(),
        assets.jobs,
    )?;
    let mut pdfs: Vec<(String, Vec<u8>)> = Vec::new();
    for ((key, _), result) in jobs.iter().zip(rendered) {
        match result {
            Ok(pdf) => pdfs.push((key.clone(), pdf.bytes)),
            Err(err) => {
                let message = err
                    .to_string()
                    .lines()
                    .map(str::trim)
                    .collect::<Vec<_>>()
                    .join(" ");
                findings.error(format!("`{key}` does not render: {message}"));
            }
        }
    }
    let facts_checked = check_facts(config, &samples, &pdfs, &mut findings);
    let emails_checked = check_emails(config, &templates, &samples, &mut findings);
    println!(
        "{:<28} {:>7} {:>6} {:>6}  hardest sample (en; es)",
        "letter type", "letters", "grade", "F-H es"
    );
    for TypeSummary {
        letter_type,
        count,
        worst,
        worst_es,
    } in &grades
    {
        let (grade, key) = match worst {
            Some((grade, key)) => (format!("{grade:.1}"), key.as_str()),
            None => ("-".to_owned(), "-"),
        };
        let (score, key_es) = match worst_es {
            Some((score, key)) => (format!("{score:.1}"), key.as_str()),
            None => ("-".to_owned(), "-"),
        };
        println!(
            "{:<28} {count:>7} {grade:>6} {score:>6}  {key}; {key_es}",
            letter_type.to_string()
        );
    }
    eprintln!(
        "checked {} letters from `{}` ({facts_checked} against the plan, read back from the PDF; {emails_checked} emails): {} errors, {} warnings",
        jobs.len(),
        accounts.display(),
        findings.errors,
        findings.warnings
    );
    Ok(if findings.errors == 0 {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}

/// The letter-facts check: each rendered letter's text (`pdftotext`) against its
/// account's plan; every failure is an error. Returns how many letters were checked.
fn check_facts(
    config: &Config,
    samples: &Samples,
    pdfs: &[(String, Vec<u8>)],
    findings: &mut Findings,
) -> usize {
    let texts: Vec<(LetterKey, Result<String, TextError>)> = pdfs
        .par_iter()
        .map(|(key, pdf)| (LetterKey::from_text(key), pdf_text(pdf)))
        .collect();
    let mut by_key = BTreeMap::new();
    for (key, text) in texts {
        match text {
            Ok(text) => {
                by_key.insert(key, text);
            }
            // Without pdftotext nothing can be read: say so once, not per letter.
            Err(err @ TextError::Spawn(_)) => {
                findings.error(format!("{:#}", anyhow::Error::new(err)));
                return 0;
            }
            Err(err) => findings.error(format!("`{key}`: {:#}", anyhow::Error::new(err))),
        }
    }
    for (account, decision) in &samples.decisions {
        for failure in check_account(account, decision, config, &by_key) {
            findings.error(failure.to_string());
        }
    }
    by_key.len()
}

/// Composes the email of every letter that goes by email (or has an email copy) and holds
/// it to the plan (`missive::review::facts::check_email`). Returns how many were checked.
fn check_emails(
    config: &Config,
    templates: &std::path::Path,
    samples: &Samples,
    findings: &mut Findings,
) -> usize {
    let composer = match EmailComposer::load(templates, config) {
        Ok(composer) => composer,
        Err(err) => {
            findings.error(format!("{:#}", anyhow::Error::new(err)));
            return 0;
        }
    };
    let mut checked = 0;
    for sample in &samples.letters {
        let role = match (sample.letter.channel, sample.letter.email_copy) {
            (Channel::Email, _) => Role::Letter,
            (_, true) => Role::Copy,
            _ => continue,
        };
        let key = &sample.letter.key;
        match composer.compose(&sample.account, &sample.letter, role) {
            Ok(email) => {
                checked += 1;
                for failure in check_email(
                    &sample.account,
                    &sample.letter,
                    config,
                    &email.subject,
                    &email.text,
                ) {
                    findings.error(failure.to_string());
                }
            }
            Err(err) => findings.error(format!("`{key}` email: {:#}", anyhow::Error::new(err))),
        }
    }
    checked
}

/// Every variable a template uses must be in the context of at least one of its sample
/// letters (a `null` or an empty list counts): this finds a misspelt variable even in a
/// branch no sample takes.
fn check_variables(
    composer: &Composer,
    contexts: &BTreeMap<String, Vec<Value>>,
    findings: &mut Findings,
) {
    for (template, contexts) in contexts {
        let Some(files) = composer.sources(template) else {
            continue;
        };
        for path in variables(template, &files) {
            if !contexts.iter().any(|c| lookup(c, &path).is_some()) {
                findings.error(format!(
                    "`{template}` uses `{path}`, which no letter's context provides"
                ));
            }
        }
    }
}
