//! The Typst [`World`] the renderer compiles letters in.
//!
//! [`Base`] holds everything shared by all letters and built once: the fonts, the
//! [`FontBook`], the static library files and one standard [`Library`] per letter
//! language. [`LetterWorld`] is built per letter: it borrows the base and adds the
//! letter's main source (always at [`LETTER_PATH`]) and its date.
//!
//! `FileId`s are interned globally and forever (at most 2^16 of them per process), so
//! the base interns the library paths once and every letter reuses one fixed id.

use std::collections::HashMap;
use std::fs;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, PoisonError};

use typst::diag::{FileError, FileResult};
use typst::foundations::{Bytes, Datetime, Duration};
use typst::syntax::{FileId, RootedPath, Source, VirtualPath, VirtualRoot};
use typst::text::{Font, FontBook, FontFamily, FontList, Locale, TextElem};
use typst::utils::LazyHash;
use typst::{Library, LibraryExt, World};

use sha2::{Digest, Sha256};

use super::RenderError;

/// The virtual path of every letter's main source.
pub(crate) const LETTER_PATH: &str = "/letter.typ";

/// The virtual directory the library files are mounted under.
pub(crate) const LIB_PREFIX: &str = "/lib";

/// The default text font: a letter that sets no font uses this family.
pub(crate) const DEFAULT_FONT: &str = "Liberation Sans";

/// File extensions loaded as fonts.
const FONT_EXTENSIONS: &[&str] = &["ttf", "otf", "ttc", "otc"];

/// File extensions loaded from the library directory besides `.typ` sources: images
/// and data a template may read.
const ASSET_EXTENSIONS: &[&str] = &["svg", "png", "jpg", "jpeg", "csv", "json", "toml", "yaml"];

/// A file from the library directory.
#[derive(Debug)]
enum LibFile {
    /// A Typst source, parsed once.
    Source(Source),
    /// Any other file, as bytes.
    Asset(Bytes),
}

/// The part of the world shared by all letters.
pub(crate) struct Base {
    /// The fonts, indexed like `book`.
    fonts: Vec<Font>,
    /// sha256 of the font files (names and bytes, in name order): what a letter's glyphs
    /// and line breaks come from, so processes that render one run must agree on it.
    fonts_sha256: String,
    /// Metadata about `fonts`.
    book: LazyHash<FontBook>,
    /// The files of the library directory, by id.
    files: HashMap<FileId, LibFile>,
    /// The id of [`LETTER_PATH`].
    letter_id: FileId,
    /// The standard library with the default styles of each letter locale, built on
    /// first use of the locale.
    libraries: Mutex<HashMap<Locale, Arc<LazyHash<Library>>>>,
}

impl Base {
    /// Loads the fonts of `fonts_dir` and the files of `library_dir`.
    pub(crate) fn new(fonts_dir: &Path, library_dir: &Path) -> Result<Self, RenderError> {
        let (fonts, fonts_sha256) = load_fonts(fonts_dir)?;
        let book = LazyHash::new(FontBook::from_fonts(&fonts));
        if !book.contains_family(&DEFAULT_FONT.to_lowercase()) {
            return Err(RenderError::DefaultFontMissing {
                path: fonts_dir.to_path_buf(),
                family: DEFAULT_FONT,
            });
        }
        let files = load_library(library_dir)?;
        Ok(Self {
            fonts,
            fonts_sha256,
            book,
            files,
            letter_id: project_id(LETTER_PATH),
            libraries: Mutex::new(HashMap::new()),
        })
    }

    /// The number of fonts loaded.
    pub(crate) fn font_count(&self) -> usize {
        self.fonts.len()
    }

    /// sha256 of the font files loaded (see the field).
    pub(crate) fn fonts_sha256(&self) -> &str {
        &self.fonts_sha256
    }

    /// The virtual paths of the library files, sorted.
    pub(crate) fn library_paths(&self) -> Vec<String> {
        let mut paths: Vec<String> = self
            .files
            .keys()
            .map(|id| id.vpath().get_with_slash().to_string())
            .collect();
        paths.sort();
        paths
    }

    /// The standard library whose default text language is `locale` and default
    /// font [`DEFAULT_FONT`].
    fn library(&self, locale: Locale) -> Arc<LazyHash<Library>> {
        // A poisoned lock only means another thread panicked while inserting; the map
        // itself is still consistent.
        let mut libraries = self
            .libraries
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        libraries
            .entry(locale)
            .or_insert_with(|| {
                let mut library = Library::builder().build();
                library.styles.set(TextElem::lang, locale.lang);
                library.styles.set(TextElem::region, locale.region);
                library.styles.set(
                    TextElem::font,
                    FontList(vec![FontFamily::new(DEFAULT_FONT)]),
                );
                Arc::new(LazyHash::new(library))
            })
            .clone()
    }
}

/// The world one letter is compiled in.
pub(crate) struct LetterWorld<'a> {
    /// The shared fonts and library files.
    base: &'a Base,
    /// The standard library for the letter's locale.
    library: Arc<LazyHash<Library>>,
    /// The letter's main source, at [`LETTER_PATH`].
    main: Source,
    /// What `datetime.today()` returns: the letter date.
    today: Datetime,
}

impl<'a> LetterWorld<'a> {
    /// A world whose main file is `text` and whose today is `today`.
    pub(crate) fn new(base: &'a Base, text: String, locale: Locale, today: Datetime) -> Self {
        Self {
            base,
            library: base.library(locale),
            main: Source::new(base.letter_id, text),
            today,
        }
    }
}

impl World for LetterWorld<'_> {
    fn library(&self) -> &LazyHash<Library> {
        &self.library
    }

    fn book(&self) -> &LazyHash<FontBook> {
        &self.base.book
    }

    fn main(&self) -> FileId {
        self.main.id()
    }

    fn source(&self, id: FileId) -> FileResult<Source> {
        if id == self.main.id() {
            return Ok(self.main.clone());
        }
        match self.base.files.get(&id) {
            Some(LibFile::Source(source)) => Ok(source.clone()),
            Some(LibFile::Asset(_)) => Err(FileError::NotSource),
            None => Err(not_found(id)),
        }
    }

    fn file(&self, id: FileId) -> FileResult<Bytes> {
        if id == self.main.id() {
            return Ok(Bytes::from_string(self.main.text().to_string()));
        }
        match self.base.files.get(&id) {
            Some(LibFile::Source(source)) => Ok(Bytes::from_string(source.text().to_string())),
            Some(LibFile::Asset(bytes)) => Ok(bytes.clone()),
            None => Err(not_found(id)),
        }
    }

    fn font(&self, index: usize) -> Option<Font> {
        self.base.fonts.get(index).cloned()
    }

    fn today(&self, _offset: Option<Duration>) -> Option<Datetime> {
        // Letters are dated by their mail date, whatever time zone is asked for.
        Some(self.today)
    }
}

/// The error for a file that is neither the letter nor a library file.
fn not_found(id: FileId) -> FileError {
    FileError::NotFound(PathBuf::from(id.vpath().get_with_slash()))
}

/// The id of `path` in the project root. `path` must be a valid virtual path.
fn project_id(path: &str) -> FileId {
    match VirtualPath::new(path) {
        Ok(vpath) => RootedPath::new(VirtualRoot::Project, vpath).intern(),
        // Only called with constants and with paths built from validated segments.
        Err(err) => unreachable!("invalid built-in virtual path {path:?}: {err}"),
    }
}

/// Loads every font file directly in `dir`, in file-name order so that font indices
/// (and thus fallback choices) are the same on every machine.
fn load_fonts(dir: &Path) -> Result<(Vec<Font>, String), RenderError> {
    let read_dir_err = |source| RenderError::FontsDir {
        path: dir.to_path_buf(),
        source,
    };
    let mut paths = Vec::new();
    for entry in fs::read_dir(dir).map_err(read_dir_err)? {
        let path = entry.map_err(read_dir_err)?.path();
        let is_font = path
            .extension()
            .and_then(|ext| ext.to_str())
            .is_some_and(|ext| FONT_EXTENSIONS.contains(&ext.to_ascii_lowercase().as_str()));
        if is_font && path.is_file() {
            paths.push(path);
        }
    }
    paths.sort();

    let mut fonts = Vec::new();
    let mut digest = Sha256::new();
    for path in paths {
        let data = fs::read(&path).map_err(|source| RenderError::FontRead {
            path: path.clone(),
            source,
        })?;
        // Each file's name and length before its bytes, so no two sets hash alike.
        let name = path
            .file_name()
            .map(|n| n.to_string_lossy())
            .unwrap_or_default();
        digest.update((name.len() as u64).to_le_bytes());
        digest.update(name.as_bytes());
        digest.update((data.len() as u64).to_le_bytes());
        digest.update(&data);
        let before = fonts.len();
        fonts.extend(Font::iter(Bytes::new(data)));
        if fonts.len() == before {
            return Err(RenderError::FontParse { path });
        }
    }
    if fonts.is_empty() {
        return Err(RenderError::NoFonts {
            path: dir.to_path_buf(),
        });
    }
    Ok((fonts, crate::config::hex(&digest.finalize())))
}

/// Loads the `.typ` sources and assets under `dir`, mounted at [`LIB_PREFIX`].
fn load_library(dir: &Path) -> Result<HashMap<FileId, LibFile>, RenderError> {
    let mut files = HashMap::new();
    let walk = walkdir::WalkDir::new(dir)
        .follow_links(true)
        .sort_by_file_name();
    for entry in walk {
        let entry = entry.map_err(|source| RenderError::LibraryDir {
            path: dir.to_path_buf(),
            source,
        })?;
        if !entry.file_type().is_file() {
            continue;
        }
        let path = entry.path();
        let ext = path
            .extension()
            .and_then(|ext| ext.to_str())
            .map(str::to_ascii_lowercase)
            .unwrap_or_default();
        let is_source = ext == "typ";
        if !is_source && !ASSET_EXTENSIONS.contains(&ext.as_str()) {
            continue;
        }
        let id = library_id(dir, path)?;
        let data = fs::read(path).map_err(|source| RenderError::LibraryRead {
            path: path.to_path_buf(),
            source,
        })?;
        let file = if is_source {
            let text = String::from_utf8(data).map_err(|_| RenderError::LibraryUtf8 {
                path: path.to_path_buf(),
            })?;
            LibFile::Source(Source::new(id, text))
        } else {
            LibFile::Asset(Bytes::new(data))
        };
        files.insert(id, file);
    }
    Ok(files)
}

/// The id of library file `path` (inside `dir`): `/lib/<relative path>`.
fn library_id(dir: &Path, path: &Path) -> Result<FileId, RenderError> {
    let bad_path = || RenderError::LibraryPath {
        path: path.to_path_buf(),
    };
    let relative = path.strip_prefix(dir).map_err(|_| bad_path())?;
    let mut vpath = String::from(LIB_PREFIX);
    for component in relative.components() {
        let segment = component.as_os_str().to_str().ok_or_else(bad_path)?;
        vpath.push('/');
        vpath.push_str(segment);
    }
    let vpath = VirtualPath::new(&vpath).map_err(|_| bad_path())?;
    Ok(RootedPath::new(VirtualRoot::Project, vpath).intern())
}
