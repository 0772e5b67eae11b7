//! Errors of the renderer and the Typst diagnostics they carry.

use std::fmt;
use std::path::PathBuf;

use typst::diag::{Severity as TypstSeverity, SourceDiagnostic};
use typst::syntax::{DiagSpan, Source};
use typst::{World, WorldExt};

/// An error from setting up the renderer or rendering one letter.
#[derive(Debug, thiserror::Error)]
pub enum RenderError {
    /// The fonts directory could not be listed.
    #[error("Failed to read the fonts directory `{}`", path.display())]
    FontsDir {
        /// The fonts directory.
        path: PathBuf,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
    /// A font file could not be read.
    #[error("Failed to read font `{}`", path.display())]
    FontRead {
        /// The font file.
        path: PathBuf,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
    /// A font file holds no font Typst can use.
    #[error("Font `{}` is not a usable TrueType/OpenType font", path.display())]
    FontParse {
        /// The font file.
        path: PathBuf,
    },
    /// The fonts directory holds no font files.
    #[error("No font files (`.ttf`, `.otf`, `.ttc`, `.otc`) in `{}`", path.display())]
    NoFonts {
        /// The fonts directory.
        path: PathBuf,
    },
    /// The fonts directory lacks the renderer's default family.
    #[error("The fonts in `{}` don't include the default family `{family}`", path.display())]
    DefaultFontMissing {
        /// The fonts directory.
        path: PathBuf,
        /// The missing family.
        family: &'static str,
    },
    /// The library directory could not be walked.
    #[error("Failed to read the Typst library directory `{}`", path.display())]
    LibraryDir {
        /// The library directory.
        path: PathBuf,
        /// The walk error (names the entry that failed, if any).
        #[source]
        source: walkdir::Error,
    },
    /// A library file could not be read.
    #[error("Failed to read Typst library file `{}`", path.display())]
    LibraryRead {
        /// The library file.
        path: PathBuf,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
    /// A library `.typ` file is not UTF-8.
    #[error("Typst library file `{}` is not valid UTF-8", path.display())]
    LibraryUtf8 {
        /// The library file.
        path: PathBuf,
    },
    /// A library file's path can't be a Typst virtual path (e.g. not UTF-8).
    #[error("Typst library file `{}` has a path Typst can't address", path.display())]
    LibraryPath {
        /// The library file.
        path: PathBuf,
    },
    /// The letter's language is not an ISO 639 code with an optional region.
    #[error("Invalid letter language `{lang}` (expected e.g. `en` or `en-US`)")]
    InvalidLang {
        /// The language as given.
        lang: String,
    },
    /// The letter's title is empty; PDF/UA-1 requires one.
    #[error("The letter has an empty title (PDF/UA-1 requires a document title)")]
    EmptyTitle,
    /// The letter's date can't be represented as a Typst date.
    #[error("The letter date {date} is out of range")]
    InvalidDate {
        /// The date as given.
        date: chrono::NaiveDate,
    },
    /// Typst failed to compile the letter source.
    #[error("Failed to compile the letter\n{}", DiagnosticList(.errors))]
    Compile {
        /// The errors, in source order as Typst reports them.
        errors: Vec<Diagnostic>,
        /// Warnings emitted before compilation failed.
        warnings: Vec<Diagnostic>,
    },
    /// The compiled letter could not be exported as PDF/A-2b + PDF/UA-1 (e.g. a glyph
    /// missing from every font, an image without alt text).
    #[error("Failed to export the letter as PDF/A-2b + PDF/UA-1\n{}", DiagnosticList(.errors))]
    Export {
        /// The export errors.
        errors: Vec<Diagnostic>,
    },
    /// The PNG scale is not a positive, finite number of pixels per point.
    #[error("Invalid PNG scale {pixel_per_pt} (expected 0 < pixels per point <= 32)")]
    InvalidScale {
        /// The scale as given.
        pixel_per_pt: f32,
    },
    /// A rendered page could not be encoded as PNG.
    #[error("Failed to encode page {page} as PNG: {message}")]
    Png {
        /// The 1-based page number.
        page: usize,
        /// The encoder's message.
        message: String,
    },
    /// Typst panicked while rendering the letter (a Typst bug; other letters are
    /// unaffected).
    #[error("Typst panicked while rendering the letter: {message}")]
    Panicked {
        /// The panic message.
        message: String,
    },
    /// The thread pool for batch rendering could not be built.
    #[error("Failed to start the rendering thread pool")]
    ThreadPool(#[source] rayon::ThreadPoolBuildError),
    /// A letter of a batch was not rendered (a bug: every letter should get a result).
    #[error("The letter was not rendered")]
    NotRendered,
}

impl RenderError {
    /// The Typst diagnostics of a compile or export error (empty for other errors).
    pub fn diagnostics(&self) -> &[Diagnostic] {
        match self {
            Self::Compile { errors, .. } | Self::Export { errors } => errors,
            _ => &[],
        }
    }
}

/// Whether a diagnostic is fatal.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Severity {
    /// Compilation or export failed.
    Error,
    /// The letter rendered but something looks wrong.
    Warning,
}

/// One Typst error or warning, resolved to a file and line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Diagnostic {
    /// Error or warning.
    pub severity: Severity,
    /// The virtual file, without leading slash (`letter.typ`, `lib/base.typ`), if the
    /// diagnostic points into a file.
    pub file: Option<String>,
    /// The 1-based line, if known.
    pub line: Option<usize>,
    /// The 1-based column (in characters), if known.
    pub column: Option<usize>,
    /// The text of that line, trimmed of its line break.
    pub source_line: Option<String>,
    /// Typst's message, e.g. `unknown variable: foo`.
    pub message: String,
    /// Typst's hints.
    pub hints: Vec<String>,
    /// Where the problem was reached from (`letter.typ:3: while calling \`notice\``),
    /// innermost first.
    pub trace: Vec<String>,
}

impl Diagnostic {
    /// Resolves a Typst diagnostic against the world it was produced in.
    pub(crate) fn from_typst(world: &dyn World, diag: &SourceDiagnostic) -> Self {
        let location = Location::resolve(world, diag.span);
        let trace = diag
            .trace
            .iter()
            .map(|point| {
                let at = Location::resolve(world, point.span.into());
                format!("{}while {}", at.prefix(), trace_text(&point.v.to_string()))
            })
            .collect();
        Self {
            severity: match diag.severity {
                TypstSeverity::Error => Severity::Error,
                TypstSeverity::Warning => Severity::Warning,
            },
            file: location.file,
            line: location.line,
            column: location.column,
            source_line: location.source_line,
            message: diag.message.to_string(),
            hints: diag.hints.iter().map(|hint| hint.v.to_string()).collect(),
            trace,
        }
    }

    /// Resolves a list of Typst diagnostics.
    pub(crate) fn from_typst_all(world: &dyn World, diags: &[SourceDiagnostic]) -> Vec<Self> {
        diags
            .iter()
            .map(|diag| Self::from_typst(world, diag))
            .collect()
    }
}

/// `letter.typ:12: unknown variable: foo`, then the source line, hints and trace on
/// indented lines.
impl fmt::Display for Diagnostic {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let location = Location {
            file: self.file.clone(),
            line: self.line,
            column: self.column,
            source_line: None,
        };
        let kind = match self.severity {
            Severity::Error => "",
            Severity::Warning => "warning: ",
        };
        write!(f, "{}{kind}{}", location.prefix(), self.message)?;
        if let (Some(line), Some(text)) = (self.line, &self.source_line) {
            write!(f, "\n  {line:>4} | {text}")?;
        }
        for hint in &self.hints {
            write!(f, "\n  hint: {hint}")?;
        }
        for point in &self.trace {
            write!(f, "\n  {point}")?;
        }
        Ok(())
    }
}

/// Formats diagnostics one per line (each may span several lines).
struct DiagnosticList<'a>(&'a [Diagnostic]);

impl fmt::Display for DiagnosticList<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, diag) in self.0.iter().enumerate() {
            if i > 0 {
                writeln!(f)?;
            }
            write!(f, "{diag}")?;
        }
        Ok(())
    }
}

/// A resolved span.
struct Location {
    file: Option<String>,
    line: Option<usize>,
    column: Option<usize>,
    source_line: Option<String>,
}

impl Location {
    /// Finds the file, line and column of `span` in `world`.
    fn resolve(world: &dyn World, span: DiagSpan) -> Self {
        let mut location = Self {
            file: None,
            line: None,
            column: None,
            source_line: None,
        };
        let Some(id) = span.id() else {
            return location;
        };
        location.file = Some(id.vpath().get_without_slash().to_string());
        let Ok(source) = world.source(id) else {
            return location;
        };
        let Some(range) = world.range(span) else {
            return location;
        };
        let Some((line, column)) = source.lines().byte_to_line_column(range.start) else {
            return location;
        };
        location.line = Some(line + 1);
        location.column = Some(column + 1);
        location.source_line = line_text(&source, line);
        location
    }

    /// `file:line: ` or `file: ` or nothing.
    fn prefix(&self) -> String {
        match (&self.file, self.line) {
            (Some(file), Some(line)) => format!("{file}:{line}: "),
            (Some(file), None) => format!("{file}: "),
            _ => String::new(),
        }
    }
}

/// The text of 0-based `line` of `source`, without its line break.
fn line_text(source: &Source, line: usize) -> Option<String> {
    let range = source.lines().line_to_range(line)?;
    let text = source.text().get(range)?;
    Some(text.trim_end_matches(['\r', '\n']).to_string())
}

/// Typst's tracepoint text (`while calling ...`) without its leading "while ".
fn trace_text(text: &str) -> &str {
    text.strip_prefix("while ").unwrap_or(text)
}
