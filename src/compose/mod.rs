//! Stage 3, `compose`: a due letter + its account + configuration → the Typst source of
//! that letter, through a Tera template.
//!
//! Templates live in `templates/letters/<kind>.typ.tera` (variants inside, as
//! `{% if letter.variant == "federal" %}`), Spanish ones in
//! `templates/letters/es/<kind>.typ.tera` (the account's `language` picks; see
//! [`crate::language`]), and import the shared Typst layout from
//! `templates/typst/` (loaded by the renderer as static files). Templates are loaded once;
//! every `{{ … }}` must end in a Typst-safe filter (see [`filters`]), and a variable that
//! does not exist is an error, never a blank. Each composed letter records which template
//! (and its content hash, including the layout files) made it.

pub mod filters;

use crate::view;
pub use crate::view::MailMarks;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use chrono::NaiveDate;
use sha2::{Digest, Sha256};

use crate::account::Account;
use crate::config::{Config, hex};
use crate::decide::DueLetter;
use crate::language::Language;
use crate::letter::{LetterKey, LetterKind};

/// Templates could not be loaded, or a letter could not be composed.
#[derive(Debug, thiserror::Error)]
pub enum ComposeError {
    /// The templates directory or a file in it could not be read.
    #[error("failed to read templates from `{path}`")]
    Read {
        /// What was being read.
        path: PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// A template does not parse, or lacks a kind's file.
    #[error("invalid template `{template}`: {message}")]
    Template {
        /// Template name.
        template: String,
        /// What is wrong (Tera's message chain, on one line).
        message: String,
    },
    /// A template would put a raw value into Typst source.
    #[error(
        "template `{template}` line {line}: `{expression}` must end in a Typst-safe filter ({})",
        filters::SAFE_FILTERS.join(", ")
    )]
    UnsafeExpression {
        /// Template name.
        template: String,
        /// 1-based line.
        line: usize,
        /// The expression.
        expression: String,
    },
    /// Rendering the template for one letter failed (missing variable, bad value).
    #[error("template `{template}` failed: {message}")]
    Letter {
        /// The letter.
        key: LetterKey,
        /// Template name.
        template: String,
        /// Tera's message chain, on one line.
        message: String,
    },
}

/// The Typst source of one letter, ready to render.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ComposedLetter {
    /// The letter's key.
    pub key: LetterKey,
    /// Template name (`letters/intent_to_offset.typ.tera`).
    pub template: String,
    /// SHA-256 of the template plus the shared layout files it builds on.
    pub template_sha256: String,
    /// Full Typst source.
    pub source: String,
    /// Document title (PDF metadata).
    pub title: String,
    /// The letter date (PDF timestamp and the letter's own date).
    pub date: NaiveDate,
    /// Document language.
    pub lang: String,
}

/// Loaded templates, ready to compose any letter.
pub struct Composer {
    /// One Tera per language: each has its own `date` filter and its own templates.
    teras: BTreeMap<Language, tera::Tera>,
    /// The configuration with its texts in each language ([`Config::localized`]).
    configs: BTreeMap<Language, Config>,
    /// Template name → content hash (template + shared layout and partials).
    hashes: BTreeMap<String, String>,
    /// Every file the hashes cover (`letters/…`, `typst/…`), name → text.
    files: BTreeMap<String, String>,
}

/// The `.tera` files directly in `dir/sub` whose names end in `suffix`, as
/// (`sub/name`, text), sorted.
fn read_templates(
    dir: &Path,
    sub: &str,
    suffix: &str,
) -> Result<Vec<(String, String)>, ComposeError> {
    let path = dir.join(sub);
    let entries = std::fs::read_dir(&path).map_err(|source| ComposeError::Read {
        path: path.clone(),
        source,
    })?;
    let mut files = Vec::new();
    for entry in entries {
        let entry = entry.map_err(|source| ComposeError::Read {
            path: path.clone(),
            source,
        })?;
        let name = entry.file_name().to_string_lossy().into_owned();
        if name.ends_with(suffix) && entry.path().is_file() {
            let text =
                std::fs::read_to_string(entry.path()).map_err(|source| ComposeError::Read {
                    path: entry.path(),
                    source,
                })?;
            files.push((format!("{sub}/{name}"), text));
        }
    }
    files.sort();
    Ok(files)
}

/// The partials' prefix of a language's letter templates (`letters/_`, `letters/es/_`).
fn partial_prefix(lang: Language) -> String {
    format!("letters/{}_", lang.template_dir())
}

impl Composer {
    /// Loads each language's letter templates (`dir/letters/*.typ.tera` for English,
    /// `dir/letters/es/*.typ.tera` for Spanish, with their `_` partials) and hashes them
    /// with `dir/typst/*.typ` (the layout the renderer mounts at `/lib/`); checks every
    /// template for unsafe expressions and that every kind has one in every language.
    pub fn load(dir: &Path, config: &Config) -> Result<Composer, ComposeError> {
        let layout = read_templates(dir, "typst", ".typ")?;
        let mut teras = BTreeMap::new();
        let mut configs = BTreeMap::new();
        let mut hashes = BTreeMap::new();
        let mut files: BTreeMap<String, String> = layout.iter().cloned().collect();
        for lang in Language::ALL {
            let sub = format!("letters/{}", lang.template_dir());
            let letters = read_templates(dir, sub.trim_end_matches('/'), ".typ.tera")?;
            // Everything a letter template builds on: the Typst layout and the language's
            // Tera partials. Changing any of them changes every such template's hash.
            let prefix = partial_prefix(lang);
            let is_partial = |name: &str| name.starts_with(&prefix);
            let mut layout_hasher = Sha256::new();
            let shared = layout
                .iter()
                .chain(letters.iter().filter(|(name, _)| is_partial(name)));
            for (name, text) in shared {
                layout_hasher.update(name.as_bytes());
                layout_hasher.update([0]);
                layout_hasher.update(text.as_bytes());
                layout_hasher.update([0]);
            }
            let mut tera = tera::Tera::default();
            tera.autoescape_on(vec![]);
            tera.register_filter("str", filters::str_filter);
            tera.register_filter("money", filters::money_filter);
            tera.register_filter("date", filters::date_filter_in(lang));
            tera.register_filter("tin", filters::tin_filter);
            tera.register_filter("int", filters::int_filter);
            for (name, text) in &letters {
                if let Some((line, expression)) =
                    filters::unsafe_expressions(text).into_iter().next()
                {
                    return Err(ComposeError::UnsafeExpression {
                        template: name.clone(),
                        line,
                        expression,
                    });
                }
                if is_partial(name) {
                    continue;
                }
                let mut hasher = layout_hasher.clone();
                hasher.update(name.as_bytes());
                hasher.update([0]);
                hasher.update(text.as_bytes());
                hashes.insert(name.clone(), hex(&hasher.finalize()));
            }
            tera.add_raw_templates(letters.iter().map(|(n, t)| (n.as_str(), t.as_str())))
                .map_err(|err| ComposeError::Template {
                    template: sub.clone(),
                    message: crate::report::cause_chain(&err),
                })?;
            for kind in LetterKind::ALL {
                let name = template_name_in(kind, lang);
                if !hashes.contains_key(&name) {
                    return Err(ComposeError::Template {
                        template: name,
                        message: format!("no {lang} template for `{kind}` letters"),
                    });
                }
            }
            files.extend(letters);
            teras.insert(lang, tera);
            configs.insert(lang, config.localized(lang));
        }
        Ok(Composer {
            teras,
            configs,
            hashes,
            files,
        })
    }

    /// Template name → content hash, for approval and the ledger.
    pub fn template_hashes(&self) -> &BTreeMap<String, String> {
        &self.hashes
    }

    /// The texts a template's content hash covers: the template itself, every partial of
    /// its language (`letters/_*.typ.tera`, `letters/es/_*.typ.tera`) and every layout file
    /// (`typst/*.typ`), name → text; `None` for an unknown template. What a reviewer
    /// approves, and diffs against.
    pub fn sources(&self, template: &str) -> Option<BTreeMap<String, String>> {
        if !self.hashes.contains_key(template) {
            return None;
        }
        let prefix = partial_prefix(template_language(template));
        Some(
            self.files
                .iter()
                .filter(|(name, _)| {
                    name.as_str() == template
                        || (name.starts_with(&prefix) && !name[prefix.len()..].contains('/'))
                        || name.starts_with("typst/")
                })
                .map(|(name, text)| (name.clone(), text.clone()))
                .collect(),
        )
    }

    /// The text of one loaded file (`letters/refund.typ.tera`, `typst/letter.typ`).
    pub fn file_text(&self, name: &str) -> Option<&str> {
        self.files.get(name).map(String::as_str)
    }

    /// The configuration with its texts in `lang`.
    pub fn config_in(&self, lang: Language) -> &Config {
        &self.configs[&lang]
    }

    /// The JSON view a template sees for this letter (for showing reviewers the values),
    /// in the account's language.
    pub fn context(
        &self,
        account: &Account,
        letter: &DueLetter,
    ) -> Result<serde_json::Value, ComposeError> {
        self.context_in(Language::of(account), account, letter)
    }

    /// The JSON view the `lang` template sees for this letter.
    pub fn context_in(
        &self,
        lang: Language,
        account: &Account,
        letter: &DueLetter,
    ) -> Result<serde_json::Value, ComposeError> {
        let context =
            view::context(account, letter, self.config_in(lang), None).map_err(|message| {
                ComposeError::Letter {
                    key: letter.key.clone(),
                    template: template_name_in(letter.kind, lang),
                    message,
                }
            })?;
        Ok(context.into_json())
    }

    /// Composes one letter's Typst source, in the account's language.
    pub fn compose(
        &self,
        account: &Account,
        letter: &DueLetter,
    ) -> Result<ComposedLetter, ComposeError> {
        self.compose_piece(account, letter, None)
    }

    /// Composes one letter's Typst source as a printed mail piece: with its IMb and
    /// article number (if any) in the address block.
    pub fn compose_piece(
        &self,
        account: &Account,
        letter: &DueLetter,
        marks: Option<&MailMarks>,
    ) -> Result<ComposedLetter, ComposeError> {
        self.compose_in(Language::of(account), account, letter, marks)
    }

    /// Composes one letter's Typst source in `lang`, whatever the account asks for (what
    /// `preview --language` shows).
    pub fn compose_in(
        &self,
        lang: Language,
        account: &Account,
        letter: &DueLetter,
        marks: Option<&MailMarks>,
    ) -> Result<ComposedLetter, ComposeError> {
        let template = template_name_in(letter.kind, lang);
        let fail = |message: String| ComposeError::Letter {
            key: letter.key.clone(),
            template: template.clone(),
            message,
        };
        let config = self.config_in(lang);
        let context = view::context(account, letter, config, marks).map_err(fail)?;
        let source = self.teras[&lang]
            .render(&template, &context)
            .map_err(|err| fail(crate::report::cause_chain(&err)))?;
        let template_sha256 = self.hashes.get(&template).cloned().unwrap_or_default();
        Ok(ComposedLetter {
            key: letter.key.clone(),
            template,
            template_sha256,
            source,
            title: format!(
                "{} – {}",
                config.titles.of(letter.kind, letter.variant),
                letter.account_id
            ),
            date: letter.letter_date,
            lang: lang.pdf_tag().to_owned(),
        })
    }
}

/// The English template that writes letters of `kind`.
pub fn template_name(kind: LetterKind) -> String {
    template_name_in(kind, Language::En)
}

/// The template that writes letters of `kind` in `lang`: `letters/refund.typ.tera`,
/// `letters/es/refund.typ.tera`.
pub fn template_name_in(kind: LetterKind, lang: Language) -> String {
    format!("letters/{}{}.typ.tera", lang.template_dir(), kind.as_str())
}

/// The language a letter template name is in (`letters/es/…` → Spanish).
pub fn template_language(template: &str) -> Language {
    Language::ALL
        .into_iter()
        .rev()
        .find(|l| {
            !l.template_dir().is_empty()
                && template.starts_with(&format!("letters/{}", l.template_dir()))
        })
        .unwrap_or(Language::En)
}
