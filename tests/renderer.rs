//! Rendering tests: real letters through the real fonts in `fonts/` and the test
//! library in `tests/fixtures/render/lib/`.
//!
//! PDF structure is checked in Rust with `lopdf`; `qpdf --check` and `pdftotext` run
//! too when installed (`apt-get install -y qpdf poppler-utils`), and a notice is
//! printed when they aren't.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

use chrono::NaiveDate;
use lopdf::{Document, Object};
use missive::render::{LetterSource, RenderError, RenderedPdf, Renderer};

/// The accented recipient name the tests look for in the output.
const NAME: &str = "José Núñez-O’Brien";

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// One renderer shared by all tests (as the pipeline shares one).
fn renderer() -> &'static Renderer {
    static RENDERER: OnceLock<Renderer> = OnceLock::new();
    RENDERER.get_or_init(|| {
        Renderer::new(
            &root().join("fonts"),
            &root().join("tests/fixtures/render/lib"),
        )
        .expect("renderer loads the project fonts and the test library")
    })
}

fn date(y: i32, m: u32, d: u32) -> NaiveDate {
    NaiveDate::from_ymd_opt(y, m, d).expect("valid test date")
}

/// A one-page refund-offset notice using the library, a data table with a header
/// row, a layout grid, `set document` and `set text(lang: ..)`.
fn letter_source(name: &str, amount: &str) -> String {
    format!(
        r#"#import "/lib/base.typ": *
#set document(title: "ignored: the job's title wins", keywords: ("notice",))
#set text(lang: "en")
#show: notice

#grid(
  columns: (1fr, 1fr),
  address("{name}", ("12 Elm St", "Springfield, ST 00000")),
  align(right)[Notice date: #datetime.today().display("[month repr:long] [day], [year]")],
)

= Notice of Refund Offset

Dear {name},

Your state income tax refund was applied to a debt you owe, as §~12-3 of the
Revenue Code allows. The amounts are below – “offset” means the part we kept.

#table(
  columns: (2fr, 1fr),
  align: (left, right),
  table.header([*Item*], [*Amount*]),
  [Refund due], money("{amount}"),
  [Offset to child support], money("{amount}"),
  [Refund paid], money("0.00"),
)

_If you disagree, write to us within 30 days._ *Keep this notice.*
"#
    )
}

fn job(main: String, d: NaiveDate) -> LetterSource {
    LetterSource {
        main,
        date: d,
        title: "Notice of Refund Offset".into(),
        author: "State Department of Revenue".into(),
        lang: "en".into(),
    }
}

fn sample_job() -> LetterSource {
    job(letter_source(NAME, "412.50"), date(2025, 3, 14))
}

fn render_ok(job: &LetterSource) -> RenderedPdf {
    match renderer().render_pdf(job) {
        Ok(pdf) => pdf,
        Err(err) => panic!("render failed:\n{err}"),
    }
}

/// Writes `bytes` to a fresh temp file for the external tools.
fn temp_pdf(bytes: &[u8]) -> (tempfile::TempDir, PathBuf) {
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("letter.pdf");
    std::fs::write(&path, bytes).expect("write temp pdf");
    (dir, path)
}

/// Runs `tool args.. path`; `None` (after a notice) when the tool isn't installed.
fn run_tool(tool: &str, args: &[&str], path: &Path) -> Option<std::process::Output> {
    match Command::new(tool).args(args).arg(path).output() {
        Ok(output) => Some(output),
        Err(err) if err.kind() == std::io::ErrorKind::NotFound => {
            eprintln!("notice: `{tool}` not installed, skipping that check");
            None
        }
        Err(err) => panic!("running {tool}: {err}"),
    }
}

/// Decodes a PDF text string (UTF-16BE with BOM, else ASCII/PDFDocEncoding).
fn pdf_text(bytes: &[u8]) -> String {
    match bytes.strip_prefix(b"\xfe\xff") {
        Some(utf16) => {
            let units: Vec<u16> = utf16
                .chunks_exact(2)
                .map(|c| u16::from_be_bytes([c[0], c[1]]))
                .collect();
            String::from_utf16_lossy(&units)
        }
        None => String::from_utf8_lossy(bytes).into_owned(),
    }
}

fn deref<'a>(doc: &'a Document, obj: &'a Object) -> &'a Object {
    doc.dereference(obj).expect("resolvable reference").1
}

fn dict_get<'a>(doc: &'a Document, dict: &'a lopdf::Dictionary, key: &str) -> &'a Object {
    let obj = dict
        .get(key.as_bytes())
        .unwrap_or_else(|_| panic!("/{key} present"));
    deref(doc, obj)
}

#[test]
fn sample_letter_is_pdfa_and_pdfua_shaped() {
    let pdf = render_ok(&sample_job());
    assert_eq!(pdf.pages, 1);
    assert!(pdf.bytes.starts_with(b"%PDF-1.7"), "PDF/A-2b means PDF 1.7");
    assert!(
        pdf.warnings.is_empty(),
        "unexpected warnings: {:?}",
        pdf.warnings
    );

    let doc = Document::load_mem(&pdf.bytes).expect("lopdf parses the PDF");
    let catalog = doc.catalog().expect("catalog");

    // XMP: PDF/A-2b and PDF/UA-1 identification, title and language.
    let metadata = dict_get(&doc, catalog, "Metadata")
        .as_stream()
        .expect("XMP stream");
    let xmp = metadata.get_plain_content().expect("XMP content");
    let xmp = String::from_utf8_lossy(&xmp);
    for needle in [
        "<pdfaid:part>2</pdfaid:part>",
        "<pdfaid:conformance>B</pdfaid:conformance>",
        "<pdfuaid:part>1</pdfuaid:part>",
        ">Notice of Refund Offset<",
        ">State Department of Revenue<",
        "<dc:language><rdf:Bag><rdf:li>en</rdf:li>",
    ] {
        assert!(xmp.contains(needle), "XMP lacks {needle}:\n{xmp}");
    }
    assert!(
        xmp.contains("2025-03-14T00:00:00"),
        "XMP dates come from the letter date:\n{xmp}"
    );

    // Tagged PDF.
    let mark_info = dict_get(&doc, catalog, "MarkInfo")
        .as_dict()
        .expect("MarkInfo dict");
    assert!(
        dict_get(&doc, mark_info, "Marked")
            .as_bool()
            .expect("Marked bool")
    );
    assert!(catalog.has(b"StructTreeRoot"), "StructTreeRoot present");
    let lang = dict_get(&doc, catalog, "Lang")
        .as_str()
        .expect("Lang string");
    assert_eq!(lang, b"en");
    let prefs = dict_get(&doc, catalog, "ViewerPreferences")
        .as_dict()
        .expect("prefs dict");
    assert!(
        dict_get(&doc, prefs, "DisplayDocTitle")
            .as_bool()
            .expect("bool")
    );

    // Output intent with an ICC profile.
    let intents = dict_get(&doc, catalog, "OutputIntents")
        .as_array()
        .expect("array");
    assert!(!intents.is_empty());
    let intent = deref(&doc, &intents[0]).as_dict().expect("intent dict");
    assert!(intent.has(b"DestOutputProfile"));

    // Every font descriptor embeds its font program.
    let mut descriptors = 0;
    for obj in doc.objects.values() {
        let dict = match obj {
            Object::Dictionary(dict) => dict,
            Object::Stream(stream) => &stream.dict,
            _ => continue,
        };
        if dict.has_type(b"FontDescriptor") {
            descriptors += 1;
            assert!(
                dict.has(b"FontFile2") || dict.has(b"FontFile3") || dict.has(b"FontFile"),
                "font not embedded: {dict:?}"
            );
        }
    }
    assert!(
        descriptors >= 2,
        "regular + bold (+ italic) fonts, found {descriptors}"
    );

    // The document info carries the job's title, not the source's.
    let info_ref = doc.trailer.get(b"Info").expect("Info in trailer");
    let info = deref(&doc, info_ref).as_dict().expect("Info dict");
    let title = pdf_text(dict_get(&doc, info, "Title").as_str().expect("title"));
    assert_eq!(title, "Notice of Refund Offset");
    let author = pdf_text(dict_get(&doc, info, "Author").as_str().expect("author"));
    assert_eq!(author, "State Department of Revenue");
}

#[test]
fn sample_letter_passes_qpdf_and_has_the_name_as_text() {
    let pdf = render_ok(&sample_job());
    let (_dir, path) = temp_pdf(&pdf.bytes);
    if let Some(out) = run_tool("qpdf", &["--check"], &path) {
        assert!(
            out.status.success(),
            "qpdf --check failed:\n{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }
    if let Some(out) = run_tool("pdftotext", &["-layout", "-enc", "UTF-8"], &path) {
        assert!(out.status.success(), "pdftotext failed");
        let text = std::fs::read_to_string(path.with_extension("txt")).expect("pdftotext output");
        for needle in [
            NAME,
            "§",
            "“offset”",
            "March 14, 2025",
            "$412.50",
            "Page 1 of 1",
        ] {
            assert!(text.contains(needle), "text lacks {needle:?}:\n{text}");
        }
    }
}

#[test]
fn same_input_gives_identical_bytes() {
    let a = render_ok(&sample_job());
    let b = render_ok(&sample_job());
    assert!(a.bytes == b.bytes, "two renders of one job differ");
}

#[test]
fn a_different_date_changes_the_bytes() {
    let a = render_ok(&sample_job());
    let mut later = sample_job();
    later.date = date(2025, 3, 15);
    let b = render_ok(&later);
    assert_ne!(a.bytes, b.bytes);

    // Only the date differs when the source doesn't show it: the PDF timestamp alone
    // must still change.
    let plain = |d| job("#set text(lang: \"en\")\nHello.".into(), d);
    assert_ne!(
        render_ok(&plain(date(2025, 3, 14))).bytes,
        render_ok(&plain(date(2025, 3, 15))).bytes
    );
}

#[test]
fn typst_errors_are_readable() {
    let source = "#import \"/lib/base.typ\": *\n#show: notice\n\nDear #foo,\n";
    let err = renderer()
        .render_pdf(&job(source.into(), date(2025, 3, 14)))
        .expect_err("unknown variable must fail");
    assert!(matches!(err, RenderError::Compile { .. }), "{err:?}");
    let text = err.to_string();
    eprintln!("{text}");
    assert!(
        text.contains("letter.typ:4: unknown variable: foo"),
        "{text}"
    );
    assert!(text.contains("Dear #foo,"), "source line shown: {text}");
    let diag = &err.diagnostics()[0];
    assert_eq!(
        (diag.file.as_deref(), diag.line, diag.column),
        (Some("letter.typ"), Some(4), Some(7))
    );
}

#[test]
fn errors_inside_the_library_name_the_library_file_and_the_call() {
    let source = "#import \"/lib/base.typ\": *\n#address(\"A\", 5)\n";
    let err = renderer()
        .render_pdf(&job(source.into(), date(2025, 3, 14)))
        .expect_err("spreading an int must fail");
    let text = err.to_string();
    eprintln!("{text}");
    assert!(text.contains("lib/base.typ:"), "{text}");
    assert!(
        text.contains("letter.typ:2: while calling `address`"),
        "{text}"
    );
}

#[test]
fn missing_import_is_an_error() {
    let source = "#import \"/lib/nope.typ\": *\nHi\n";
    let err = renderer()
        .render_pdf(&job(source.into(), date(2025, 3, 14)))
        .expect_err("missing file must fail");
    assert!(
        err.to_string().contains("letter.typ:1: file not found"),
        "{err}"
    );
}

#[test]
fn a_glyph_missing_from_every_font_is_an_export_error() {
    let source = "#set text(lang: \"en\")\nName: 王小明\n";
    let err = renderer()
        .render_pdf(&job(source.into(), date(2025, 3, 14)))
        .expect_err("CJK isn't in the Liberation fonts");
    assert!(matches!(err, RenderError::Export { .. }), "{err:?}");
    let text = err.to_string();
    eprintln!("{text}");
    assert!(text.contains("letter.typ:2:"), "points at the text: {text}");
}

#[test]
fn document_language_comes_from_the_job() {
    let spanish = LetterSource {
        lang: "es".into(),
        ..job("Estimado señor:".into(), date(2025, 1, 2))
    };
    let pdf = render_ok(&spanish);
    let doc = Document::load_mem(&pdf.bytes).expect("parses");
    let catalog = doc.catalog().expect("catalog");
    assert_eq!(
        dict_get(&doc, catalog, "Lang").as_str().expect("Lang"),
        b"es"
    );

    // A source's own `set text(lang: ..)` tags its text but the document language
    // stays the job's.
    let mixed = LetterSource {
        lang: "en".into(),
        ..job("#set text(lang: \"es\")\nHola".into(), date(2025, 1, 2))
    };
    let pdf = render_ok(&mixed);
    let doc = Document::load_mem(&pdf.bytes).expect("parses");
    let catalog = doc.catalog().expect("catalog");
    assert_eq!(
        dict_get(&doc, catalog, "Lang").as_str().expect("Lang"),
        b"en"
    );
    assert!(
        pdf.bytes.windows(9).any(|w| w == b"/Lang(es)"),
        "the text is tagged es"
    );

    let bad = LetterSource {
        lang: "english".into(),
        ..sample_job()
    };
    assert!(matches!(
        renderer().render_pdf(&bad),
        Err(RenderError::InvalidLang { .. })
    ));
}

#[test]
fn two_hundred_letters_in_a_loop() {
    for i in 0..200 {
        let name = format!("Zoë Müller-{i}");
        let pdf = render_ok(&job(
            letter_source(&name, &format!("{i}.00")),
            date(2025, 4, 1),
        ));
        assert_eq!(pdf.pages, 1, "letter {i}");
    }
}

#[test]
fn render_many_keeps_input_order_and_isolates_failures() {
    let mut jobs: Vec<LetterSource> = (0..12)
        .map(|i| {
            let mut j = job(
                letter_source(&format!("Renée {i}"), "1.00"),
                date(2025, 5, 1),
            );
            j.title = format!("Notice {i}");
            j
        })
        .collect();
    jobs[5].main = "#oops".into();
    let results = renderer().render_many(&jobs, 2).expect("pool starts");
    assert_eq!(results.len(), jobs.len());
    for (i, (job, result)) in jobs.iter().zip(&results).enumerate() {
        if i == 5 {
            assert!(
                matches!(result, Err(RenderError::Compile { .. })),
                "{result:?}"
            );
        } else {
            let pdf = result.as_ref().expect("renders");
            assert_eq!(
                pdf.bytes,
                render_ok(job).bytes,
                "letter {i} out of order or unstable"
            );
        }
    }
}

#[test]
fn png_preview_has_one_image_per_page() {
    let pages = renderer()
        .render_png(&sample_job(), 1.0)
        .expect("png renders");
    assert_eq!(pages.len(), 1);
    assert!(pages[0].starts_with(b"\x89PNG\r\n\x1a\n"));
    // US Letter at 1 px/pt: 612 x 792.
    let width = u32::from_be_bytes(pages[0][16..20].try_into().expect("4 bytes"));
    let height = u32::from_be_bytes(pages[0][20..24].try_into().expect("4 bytes"));
    assert_eq!((width, height), (612, 792));
    assert!(matches!(
        renderer().render_png(&sample_job(), 0.0),
        Err(RenderError::InvalidScale { .. })
    ));
}

#[test]
fn setup_errors_name_the_path() {
    let missing = root().join("no-such-fonts-dir");
    let err = Renderer::new(&missing, &root().join("tests/fixtures/render/lib"))
        .expect_err("missing fonts dir");
    assert!(err.to_string().contains("no-such-fonts-dir"), "{err}");

    let empty = tempfile::tempdir().expect("temp dir");
    let err = Renderer::new(empty.path(), empty.path()).expect_err("no fonts");
    assert!(matches!(err, RenderError::NoFonts { .. }), "{err:?}");

    let err = Renderer::new(&root().join("fonts"), &root().join("no-such-lib"))
        .expect_err("missing library dir");
    assert!(err.to_string().contains("no-such-lib"), "{err}");
}

#[test]
fn library_files_are_mounted_under_lib() {
    assert_eq!(
        renderer().library_paths(),
        vec!["/lib/base.typ".to_string()]
    );
}

#[test]
fn a_large_batch_does_not_overflow_the_stack() {
    // A `par_iter` version of render_many overflowed the stack after ~300 letters:
    // workers waiting on Typst's inner rayon jobs stole and nested further letters.
    let jobs: Vec<LetterSource> = (0..600)
        .map(|i| {
            job(
                letter_source(&format!("Inés {i}"), "2.00"),
                date(2025, 6, 1),
            )
        })
        .collect();
    let results = renderer().render_many(&jobs, 2).expect("threads start");
    assert_eq!(results.len(), 600);
    assert!(results.iter().all(Result::is_ok));
}

#[test]
fn renders_from_a_thread_with_a_small_stack() {
    let handle = std::thread::Builder::new()
        .stack_size(256 * 1024)
        .spawn(|| renderer().render_pdf(&sample_job()).map(|pdf| pdf.pages))
        .expect("spawn");
    let pages = handle.join().expect("no stack overflow").expect("renders");
    assert_eq!(pages, 1);
}

#[test]
fn multi_page_letters_render_in_batches() {
    // Several pages let Typst lay out page runs in parallel on rayon's global pool.
    let main = "#import \"/lib/base.typ\": *\n#show: notice\n#lorem(200)\n#pagebreak()\nTwo\n#pagebreak()\nThree\n";
    let jobs: Vec<LetterSource> = (0..4).map(|_| job(main.into(), date(2025, 6, 1))).collect();
    for result in renderer().render_many(&jobs, 2).expect("threads start") {
        assert_eq!(result.expect("renders").pages, 3);
    }
}
