//! In-process Typst renderer: letter source in, PDF/A-2b + PDF/UA-1 (or PNG pages) out.
//!
//! A [`Renderer`] is built once: it loads the fonts of the project's `fonts/`
//! directory (never system fonts, so output doesn't depend on the machine) and the
//! Typst files of a library directory, mounted at `/lib/` so that a letter can
//! `#import "/lib/base.typ": *`. Each letter is then compiled in a cheap per-letter
//! world that borrows that shared base; the renderer is `Send + Sync` and
//! [`Renderer::render_many`] renders letters in parallel.
//!
//! # What comes from Rust, not from the letter source
//! [`LetterSource`] carries the document metadata and the renderer is authoritative:
//! - **title and author** are written into the document info after compilation and
//!   override any `set document(title: .., author: ..)` in the source;
//! - **date**: `datetime.today()` returns the letter date, and the PDF creation date is
//!   that date at midnight UTC (any `set document(date: ..)` is overridden), so the
//!   same input always gives byte-identical PDFs;
//! - **language**: the letter's language is the default text language (and Liberation
//!   Sans the default font) of the standard library the letter compiles against, so
//!   the PDF's document language (`/Lang`) is the job's without the source doing
//!   anything, and hyphenation and quotes follow it. A source's `set text(lang: ..)`
//!   changes the language of the text it covers (tagged as such in the structure
//!   tree) but never the document language.
//!
//! # Conformance
//! Every PDF is exported with `PdfStandard::A_2b` and `PdfStandard::Ua_1`, so Typst
//! refuses (with [`RenderError::Export`]) what it can detect as non-conforming: a glyph
//! missing from every font, an image without alt text, and so on. Typst's checks and
//! the tests' structural checks are not a full veraPDF validation.
//!
//! # Threads
//! [`Renderer::render_pdf`] may be called from any thread (it grows the stack when the
//! caller's is short). For batches use [`Renderer::render_many`] rather than calling
//! `render_pdf` inside your own rayon `par_iter`: Typst uses rayon internally, and a
//! rayon worker waiting on Typst's inner jobs steals other letters and nests them on
//! its stack. Called outside a rayon pool, `render_pdf` hands Typst's inner parallel
//! work to rayon's global pool.
//!
//! # Memory
//! Typst memoizes with `comemo`, whose cache grows without bound unless evicted; every
//! render call ends with `comemo::evict(`[`EVICT_MAX_AGE`]`)`. Typst's file ids are
//! interned for the life of the process (at most 65 535): every letter uses the one
//! id of `/letter.typ` and the library's ids are interned once, so only paths a
//! letter source invents (`#import "/x-" + str(n) + ".typ"`) would add more.

#![warn(missing_docs)]

mod error;
mod world;

use std::path::Path;
use std::str::FromStr;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use chrono::Datelike;
use typst::diag::Warned;
use typst::foundations::{Datetime, Smart};
use typst::text::{Lang, Locale, Region};
use typst::utils::Scalar;
use typst_layout::PagedDocument;
use typst_pdf::{PdfOptions, PdfStandard, PdfStandards, Timestamp};

pub use self::error::{Diagnostic, RenderError, Severity};
use self::world::{Base, LetterWorld};

/// How many `comemo::evict` calls a memoized result survives unused. Results shared
/// between letters (the parsed and evaluated library, font metrics) are used by every
/// letter and so stay; a letter's own results age out after a few more letters.
pub const EVICT_MAX_AGE: usize = 4;

/// Drops every memoized Typst result, shared ones included. For after a one-off document
/// (a certified batch's mailing book, hundreds of rows) whose results no later render
/// reuses: [`EVICT_MAX_AGE`] would keep them through the next few renders, and in the
/// batch step the next few renders are the next batches' mailing books, so each batch's
/// would pile onto the last. The next render parses the layout library again (a few ms).
pub fn forget_memoized() {
    comemo::evict(0);
}

/// The largest PNG scale accepted, in pixels per point (32 ≈ 2300 dpi).
const MAX_PIXEL_PER_PT: f32 = 32.0;

/// One letter to render.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LetterSource {
    /// The full Typst source of the letter. It is compiled as `/letter.typ`, so
    /// diagnostics name `letter.typ`; it may import library files from `/lib/`.
    pub main: String,
    /// The letter (mail) date: `datetime.today()` in the source, and the PDF creation
    /// date (midnight UTC).
    pub date: chrono::NaiveDate,
    /// The document title (PDF/UA-1 requires one; must not be empty).
    pub title: String,
    /// The document author, e.g. the department's name. Empty for none.
    pub author: String,
    /// The letter's language as an ISO 639 code with an optional ISO 3166 region:
    /// `en`, `es`, `en-US`.
    pub lang: String,
}

/// A rendered PDF.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RenderedPdf {
    /// The PDF file.
    pub bytes: Vec<u8>,
    /// The number of pages.
    pub pages: usize,
    /// Typst's warnings (the letter still rendered).
    pub warnings: Vec<Diagnostic>,
}

/// Renders letters with a fixed set of fonts and Typst library files.
///
/// Cheap to clone (the fonts and library are shared); `Send + Sync`.
#[derive(Clone)]
pub struct Renderer {
    /// Fonts, library files and standard libraries, shared by all letters.
    base: Arc<Base>,
}

impl std::fmt::Debug for Renderer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Renderer")
            .field("fonts", &self.base.font_count())
            .field("library", &self.base.library_paths())
            .finish()
    }
}

impl Renderer {
    /// Loads the fonts directly in `fonts_dir` (`.ttf`, `.otf`, `.ttc`, `.otc`; it must
    /// include Liberation Sans, the default font) and every `.typ` file (plus images
    /// and data files: `.svg`, `.png`, `.jpg`, `.csv`, `.json`, `.toml`, `.yaml`) under
    /// `library_dir`, mounted at `/lib/`: `library_dir/base.typ` is `/lib/base.typ`.
    ///
    /// Files are read once, here; errors name the path.
    pub fn new(fonts_dir: &Path, library_dir: &Path) -> Result<Self, RenderError> {
        Ok(Self {
            base: Arc::new(Base::new(fonts_dir, library_dir)?),
        })
    }

    /// sha256 of the font files loaded (names and bytes, in name order). Every process
    /// that renders letters of one run must have the same fonts, since glyphs and line
    /// breaks come from them: workers compare this with the coordinator's.
    pub fn fonts_sha256(&self) -> &str {
        self.base.fonts_sha256()
    }

    /// The virtual paths of the loaded library files (`/lib/base.typ`, …), sorted.
    pub fn library_paths(&self) -> Vec<String> {
        self.base.library_paths()
    }

    /// Compiles `job` and exports it as a PDF/A-2b + PDF/UA-1 file.
    ///
    /// The same job always gives the same bytes. Safe to call from any thread: the
    /// compilation runs on a fresh, larger stack when the caller's is short, and a
    /// panic inside Typst comes back as [`RenderError::Panicked`].
    pub fn render_pdf(&self, job: &LetterSource) -> Result<RenderedPdf, RenderError> {
        guarded(|| self.render_pdf_impl(job))
    }

    /// Compiles `job` and renders each page as a PNG at `pixel_per_pt` pixels per point
    /// (1.0 = 72 dpi; 2.0 suits a preview). Letters that fail PDF export may still
    /// render here: no PDF standard is checked.
    pub fn render_png(
        &self,
        job: &LetterSource,
        pixel_per_pt: f32,
    ) -> Result<Vec<Vec<u8>>, RenderError> {
        guarded(|| self.render_png_impl(job, pixel_per_pt))
    }

    /// Renders `jobs` as PDFs on a rayon pool of `jobs_n` threads (at least one),
    /// keeping input order. A letter's failure doesn't stop the others; only failing
    /// to start the pool is an error for the whole batch.
    ///
    /// Each pool thread runs one loop that pulls the next letter from a shared
    /// counter ([`rayon::ThreadPool::broadcast`]); letters are never rayon jobs
    /// themselves. Typst and its PDF writer parallelize internally with rayon: inside
    /// the pool, that inner work runs on the same threads (idle ones help), with no
    /// hand-off to rayon's global pool. Were each letter a rayon job (`par_iter`), a
    /// worker waiting on Typst's inner jobs would steal further letters and nest them
    /// on its stack, which overflowed after ~300 letters.
    pub fn render_many(
        &self,
        jobs: &[LetterSource],
        jobs_n: usize,
    ) -> Result<Vec<Result<RenderedPdf, RenderError>>, RenderError> {
        let pool = rayon::ThreadPoolBuilder::new()
            .num_threads(jobs_n.clamp(1, jobs.len().max(1)))
            .stack_size(STACK_SIZE)
            .thread_name(|i| format!("missive-render-{i}"))
            .build()
            .map_err(RenderError::ThreadPool)?;
        let next = AtomicUsize::new(0);
        let done = pool.broadcast(|_| {
            let mut done = Vec::new();
            loop {
                let index = next.fetch_add(1, Ordering::Relaxed);
                let Some(job) = jobs.get(index) else { break };
                done.push((index, self.render_pdf(job)));
            }
            done
        });
        let mut results: Vec<Option<Result<RenderedPdf, RenderError>>> =
            std::iter::repeat_with(|| None).take(jobs.len()).collect();
        for (index, result) in done.into_iter().flatten() {
            if let Some(slot) = results.get_mut(index) {
                *slot = Some(result);
            }
        }
        // Every index below `jobs.len()` was claimed exactly once and its result
        // returned (`render_pdf` catches panics), so no slot is empty.
        Ok(results
            .into_iter()
            .map(|result| result.unwrap_or(Err(RenderError::NotRendered)))
            .collect())
    }

    fn render_pdf_impl(&self, job: &LetterSource) -> Result<RenderedPdf, RenderError> {
        let prepared = Prepared::new(job)?;
        let world = LetterWorld::new(
            &self.base,
            job.main.clone(),
            prepared.locale,
            prepared.today,
        );
        let (document, warnings) = compile(&world, job)?;
        let options = PdfOptions {
            // The document id is a hash of the title and author: stable across runs.
            ident: Smart::Auto,
            // No typst version in the file: upgrading typst alone shouldn't change it.
            creator: Smart::Custom(Some("missive".to_string())),
            timestamp: Some(Timestamp::new_utc(prepared.midnight)),
            standards: standards(),
            ..PdfOptions::default()
        };
        let bytes = typst_pdf::pdf(&document, &options).map_err(|errors| RenderError::Export {
            errors: Diagnostic::from_typst_all(&world, &errors),
        })?;
        Ok(RenderedPdf {
            bytes,
            pages: document.pages().len(),
            warnings,
        })
    }

    fn render_png_impl(
        &self,
        job: &LetterSource,
        pixel_per_pt: f32,
    ) -> Result<Vec<Vec<u8>>, RenderError> {
        if !(pixel_per_pt > 0.0 && pixel_per_pt <= MAX_PIXEL_PER_PT) {
            return Err(RenderError::InvalidScale { pixel_per_pt });
        }
        let prepared = Prepared::new(job)?;
        let world = LetterWorld::new(
            &self.base,
            job.main.clone(),
            prepared.locale,
            prepared.today,
        );
        let (document, _warnings) = compile(&world, job)?;
        let options = typst_render::RenderOptions {
            pixel_per_pt: Scalar::new(f64::from(pixel_per_pt)),
            render_bleed: false,
        };
        document
            .pages()
            .iter()
            .enumerate()
            .map(|(i, page)| {
                typst_render::render(page, &options)
                    .encode_png()
                    .map_err(|err| RenderError::Png {
                        page: i + 1,
                        message: err.to_string(),
                    })
            })
            .collect()
    }
}

/// The stack a render needs left, else it runs on a fresh one (see [`guarded`]).
const STACK_RED_ZONE: usize = 4 * 1024 * 1024;

/// The size of that fresh stack. Only touched pages cost memory.
const STACK_SIZE: usize = 16 * 1024 * 1024;

/// Runs a render: on a stack with at least [`STACK_RED_ZONE`] bytes free (Typst's
/// layout recurses deeply; a 2 MiB thread stack, the default for spawned threads,
/// rayon and tokio workers, is not always enough), with panics turned into
/// [`RenderError::Panicked`], and ending with `comemo::evict`.
fn guarded<T>(render: impl FnOnce() -> Result<T, RenderError>) -> Result<T, RenderError> {
    let result = stacker::maybe_grow(STACK_RED_ZONE, STACK_SIZE, || {
        std::panic::catch_unwind(std::panic::AssertUnwindSafe(render))
    });
    comemo::evict(EVICT_MAX_AGE);
    result.unwrap_or_else(|panic| {
        let message = panic
            .downcast_ref::<&str>()
            .map(|s| s.to_string())
            .or_else(|| panic.downcast_ref::<String>().cloned())
            .unwrap_or_else(|| "unknown panic payload".to_string());
        Err(RenderError::Panicked { message })
    })
}

/// The PDF standards every letter is exported with.
fn standards() -> PdfStandards {
    match PdfStandards::new(&[PdfStandard::A_2b, PdfStandard::Ua_1]) {
        Ok(standards) => standards,
        // A fixed, documented-compatible pair: only a typst change could break it.
        Err(err) => unreachable!("PDF/A-2b and PDF/UA-1 must combine: {}", err.message()),
    }
}

/// A job's validated, typst-typed inputs.
struct Prepared {
    locale: Locale,
    today: Datetime,
    midnight: Datetime,
}

impl Prepared {
    fn new(job: &LetterSource) -> Result<Self, RenderError> {
        if job.title.trim().is_empty() {
            return Err(RenderError::EmptyTitle);
        }
        let invalid_date = || RenderError::InvalidDate { date: job.date };
        let (year, month, day) = (job.date.year(), job.date.month(), job.date.day());
        let month = u8::try_from(month).map_err(|_| invalid_date())?;
        let day = u8::try_from(day).map_err(|_| invalid_date())?;
        let today = Datetime::from_ymd(year, month, day).ok_or_else(invalid_date)?;
        let midnight =
            Datetime::from_ymd_hms(year, month, day, 0, 0, 0).ok_or_else(invalid_date)?;
        Ok(Self {
            locale: parse_locale(&job.lang)?,
            today,
            midnight,
        })
    }
}

/// Parses `en` / `en-US` / `en_US`.
fn parse_locale(lang: &str) -> Result<Locale, RenderError> {
    let invalid = || RenderError::InvalidLang {
        lang: lang.to_string(),
    };
    let (code, region) = match lang.split_once(['-', '_']) {
        Some((code, region)) => (code, Some(region)),
        None => (lang, None),
    };
    if code.is_empty() || !code.chars().all(|c| c.is_ascii_alphabetic()) {
        return Err(invalid());
    }
    let lang = Lang::from_str(code).map_err(|_| invalid())?;
    let region = region
        .map(Region::from_str)
        .transpose()
        .map_err(|_| invalid())?;
    Ok(Locale::new(lang, region))
}

/// Compiles the letter and applies the job's metadata to the document.
fn compile(
    world: &LetterWorld<'_>,
    job: &LetterSource,
) -> Result<(PagedDocument, Vec<Diagnostic>), RenderError> {
    let Warned { output, warnings } = typst::compile::<PagedDocument>(world);
    let warnings = Diagnostic::from_typst_all(world, &warnings);
    let mut document = match output {
        Ok(document) => document,
        Err(errors) => {
            let errors = Diagnostic::from_typst_all(world, &errors);
            return Err(RenderError::Compile { errors, warnings });
        }
    };
    let info = document.info_mut();
    info.title = Some(job.title.as_str().into());
    info.author = if job.author.trim().is_empty() {
        Vec::new()
    } else {
        vec![job.author.as_str().into()]
    };
    info.date = Smart::Auto;
    Ok((document, warnings))
}

#[cfg(test)]
mod tests;
