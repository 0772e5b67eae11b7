//! The `missive render` command, from outside: the built binary on `samples/accounts`,
//! rendered once per test process into `$CARGO_TARGET_TMPDIR/render-samples-<pid>` (kept
//! for inspection), read back with poppler (`pdftotext`, `pdfinfo`), `qpdf` and `lopdf`,
//! plus injection, determinism, envelope-window geometry, `render.json` and template-error
//! runs in temporary directories. (The renderer's own tests are in `tests/renderer.rs`.)
//!
//! The checks that need poppler or qpdf print a notice and skip when the tool is missing
//! (`apt-get install -y poppler-utils qpdf`; `.ci/run` installs them); `pdfua check` and
//! `outloud` run when on `PATH` (`pip install pdfua outloud`; `.ci/run` installs them and
//! requires them).

mod common;

use std::collections::{BTreeSet, HashMap};
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::OnceLock;

use chrono::{Datelike, NaiveDate};
use lopdf::{Document, Object};
use serde_json::Value;

use common::dollars;
use common::files::sha256_hex;

const AS_OF: &str = "2026-12-01";
const SAMPLES: &str = "samples/accounts";

/// The injection test's taxpayer name: Typst math, code, markup, an escape, a
/// bracket, an apostrophe and HTML.
const NASTY_NAME: &str = r"Ann $x$ #set page(width: 1pt) *Bold* \ ] O'Neil <b>";
const NASTY_LINE2: &str = r"Apt #2 $y$ #pagebreak() _it_ \ [ <i> @ref";

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
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

/// `missive ARGS`, run from the crate root with the shipped configuration.
fn missive(args: &[&str]) -> Output {
    let config = root().join("missive.toml");
    Command::new(env!("CARGO_BIN_EXE_missive"))
        .current_dir(root())
        .arg("--config")
        .arg(&config)
        .args(args)
        .output()
        .expect("the missive binary runs")
}

fn describe(out: &Output) -> String {
    format!(
        "exit {:?}\n--- stdout\n{}\n--- stderr\n{}",
        out.status.code(),
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

/// `missive render --accounts ACCOUNTS --out OUT --as-of 2026-12-01 EXTRA..`.
fn render(accounts: &Path, out: &Path, extra: &[&str]) -> Output {
    let mut args = vec![
        "render",
        "--accounts",
        accounts.to_str().expect("utf-8 path"),
        "--out",
        out.to_str().expect("utf-8 path"),
        "--as-of",
        AS_OF,
    ];
    args.extend_from_slice(extra);
    missive(&args)
}

fn render_ok(accounts: &Path, out: &Path, extra: &[&str]) {
    let output = render(accounts, out, extra);
    assert!(
        output.status.success(),
        "render failed: {}",
        describe(&output)
    );
}

/// True when `tool` is installed; prints a notice once per tool when it isn't (the
/// checks that need it are then skipped, as the rest of this file does).
fn have(tool: &str) -> bool {
    static FOUND: OnceLock<std::sync::Mutex<HashMap<String, bool>>> = OnceLock::new();
    let mut found = FOUND
        .get_or_init(Default::default)
        .lock()
        .unwrap_or_else(|e| e.into_inner());
    *found.entry(tool.to_owned()).or_insert_with(|| {
        let ok = Command::new(tool).arg("--version").output().is_ok();
        if !ok {
            eprintln!(
                "notice: `{tool}` not installed, skipping the checks that need it \
                 (apt-get install -y poppler-utils qpdf)"
            );
        }
        ok
    })
}

/// `tool ARGS.. PATH TAIL..`'s standard output; panics when it fails.
fn tool_around(tool: &str, args: &[&str], path: &Path, tail: &[&str]) -> String {
    let out = Command::new(tool)
        .args(args)
        .arg(path)
        .args(tail)
        .output()
        .unwrap_or_else(|err| panic!("running {tool}: {err}"));
    assert!(
        out.status.success(),
        "{tool} {args:?} {} failed: {}",
        path.display(),
        describe(&out)
    );
    String::from_utf8(out.stdout).expect("utf-8 tool output")
}

fn tool(tool: &str, args: &[&str], path: &Path) -> String {
    tool_around(tool, args, path, &[])
}

/// `pdftotext ARGS.. PDF -` (to standard output).
fn pdftotext(args: &[&str], pdf: &Path) -> String {
    tool_around("pdftotext", args, pdf, &["-"])
}

/// `pdftotext -layout` of the whole file.
fn layout_text(pdf: &Path) -> String {
    pdftotext(&["-layout", "-enc", "UTF-8"], pdf)
}

/// Whitespace runs (line breaks, layout padding) collapsed to one space.
fn flat(text: &str) -> String {
    text.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// `pdfinfo`'s page count.
fn pdfinfo_pages(pdf: &Path) -> usize {
    let info = tool("pdfinfo", &[], pdf);
    info.lines()
        .find_map(|l| l.strip_prefix("Pages:"))
        .and_then(|n| n.trim().parse().ok())
        .unwrap_or_else(|| panic!("no page count in pdfinfo output:\n{info}"))
}

fn iso(text: &str) -> NaiveDate {
    NaiveDate::parse_from_str(text, "%Y-%m-%d").unwrap_or_else(|_| panic!("date {text}"))
}

/// A date as letters print it: "February 1, 2027".
fn long_date(date: NaiveDate) -> String {
    date.format("%B %-d, %Y").to_string()
}

fn str_at<'a>(value: &'a Value, pointer: &str) -> &'a str {
    value
        .pointer(pointer)
        .and_then(Value::as_str)
        .unwrap_or_else(|| panic!("no string at {pointer} in {value}"))
}

/// Copies a directory tree.
fn copy_tree(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).expect("create dir");
    for entry in std::fs::read_dir(from).expect("read dir") {
        let entry = entry.expect("dir entry");
        let target = to.join(entry.file_name());
        if entry.file_type().expect("file type").is_dir() {
            copy_tree(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), &target).expect("copy file");
        }
    }
}

/// The PDFs (by file name) in a directory.
fn pdf_files(dir: &Path) -> BTreeSet<String> {
    std::fs::read_dir(dir)
        .expect("read out dir")
        .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
        .filter(|name| name.ends_with(".pdf"))
        .collect()
}

/// The samples planned and rendered once for the whole test binary.
struct Samples {
    /// Output directory of `missive render` (under the target dir, kept for
    /// inspection after a failure; removed by a run an hour later).
    out: PathBuf,
    /// `missive plan --format json` for the same inputs.
    plan: Value,
    /// `render.json`.
    summary: Value,
    /// Account id → the sample account's JSON.
    accounts: HashMap<String, Value>,
    /// The shipped `missive.toml`.
    config: toml::Table,
}

impl Samples {
    fn letters(&self) -> &[Value] {
        self.plan["letters"].as_array().expect("plan letters")
    }

    /// Whether `letter`'s account reads Spanish (samples 31-34): its letter is written
    /// from `templates/letters/es/`, checked in Spanish by `tests/spanish.rs`.
    fn spanish(&self, letter: &Value) -> bool {
        self.accounts[str_at(letter, "/account_id")]["language"] == "es"
    }

    /// The PDF `render.json` lists for `key`.
    fn pdf(&self, key: &str) -> PathBuf {
        let file = self.summary["letters"]
            .as_array()
            .expect("render.json letters")
            .iter()
            .find(|l| l["key"] == key)
            .map(|l| str_at(l, "/file"))
            .unwrap_or_else(|| panic!("render.json lacks {key}"));
        self.out.join(file)
    }

    fn config_str(&self, path: &[&str]) -> String {
        let mut value = &self.config[path[0]];
        for part in &path[1..] {
            value = &value[*part];
        }
        value
            .as_str()
            .unwrap_or_else(|| panic!("missive.toml {path:?} is not a string"))
            .to_owned()
    }
}

fn samples() -> &'static Samples {
    static SAMPLES_RENDERED: OnceLock<Samples> = OnceLock::new();
    SAMPLES_RENDERED.get_or_init(|| {
        // One directory per test process: two `cargo test` runs sharing a target dir
        // must not delete each other's files. Directories of runs over an hour old go.
        let tmp = Path::new(env!("CARGO_TARGET_TMPDIR"));
        for entry in std::fs::read_dir(tmp).into_iter().flatten().flatten() {
            let stale = entry
                .metadata()
                .and_then(|m| m.modified())
                .ok()
                .and_then(|t| t.elapsed().ok())
                .is_some_and(|age| age.as_secs() > 3600);
            if stale
                && entry
                    .file_name()
                    .to_string_lossy()
                    .starts_with("render-samples")
            {
                let _ = std::fs::remove_dir_all(entry.path());
            }
        }
        let out = tmp.join(format!("render-samples-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&out);
        render_ok(Path::new(SAMPLES), &out, &[]);
        let plan = missive(&[
            "plan",
            "--accounts",
            SAMPLES,
            "--as-of",
            AS_OF,
            "--format",
            "json",
        ]);
        assert!(plan.status.success(), "plan failed: {}", describe(&plan));
        let plan: Value = serde_json::from_slice(&plan.stdout).expect("plan JSON");
        let summary: Value = serde_json::from_slice(
            &std::fs::read(out.join("render.json")).expect("render.json written"),
        )
        .expect("render.json parses");
        let mut accounts = HashMap::new();
        for entry in std::fs::read_dir(root().join(SAMPLES)).expect("samples dir") {
            let path = entry.expect("entry").path();
            if path.extension().is_some_and(|e| e == "json") {
                let account: Value =
                    serde_json::from_slice(&std::fs::read(&path).expect("read sample"))
                        .expect("sample parses");
                accounts.insert(str_at(&account, "/account_id").to_owned(), account);
            }
        }
        let config = std::fs::read_to_string(root().join("missive.toml"))
            .expect("missive.toml")
            .parse()
            .expect("missive.toml parses");
        Samples {
            out,
            plan,
            summary,
            accounts,
            config,
        }
    })
}

/// Collects what one letter's text lacks or wrongly holds, for one report at the end.
struct Check<'a> {
    failures: &'a mut Vec<String>,
    key: &'a str,
    text: &'a str,
}

impl Check<'_> {
    /// `what` must be in the (flattened) text.
    fn want(&mut self, what: &str, needle: &str) {
        if !self.text.contains(&flat(needle)) {
            self.fail(&format!("lacks {what} {needle:?}"));
        }
    }

    fn fail(&mut self, problem: &str) {
        self.failures.push(format!("{}: {problem}", self.key));
    }
}

/// Problems with taxpayer ids in `text`: any run of 9+ digits, any `ddd-dd-dddd`
/// (an unmasked SSN/ITIN shape), or `last4` right after 5 more digits.
fn full_tin_problems(text: &str, last4: &str) -> Vec<String> {
    let mut problems = Vec::new();
    let chars: Vec<char> = text.chars().collect();
    let mut run = 0;
    for (i, c) in chars.iter().enumerate() {
        run = if c.is_ascii_digit() { run + 1 } else { 0 };
        if run == 9 {
            let start = i.saturating_sub(12);
            let near: String = chars[start..(i + 4).min(chars.len())].iter().collect();
            problems.push(format!("a run of 9+ digits near {near:?}"));
        }
    }
    let shape = |w: &[char]| {
        w.iter().enumerate().all(|(i, c)| match i {
            3 | 6 => *c == '-',
            _ => c.is_ascii_digit(),
        })
    };
    for w in chars.windows(11) {
        if shape(w) {
            problems.push(format!("an unmasked id {:?}", w.iter().collect::<String>()));
        }
    }
    for (at, _) in text.match_indices(last4) {
        let before: Vec<char> = text[..at].chars().rev().take(5).collect();
        if before.len() == 5 && before.iter().all(char::is_ascii_digit) {
            problems.push(format!("{last4} preceded by 5 digits"));
        }
    }
    problems
}

#[test]
fn the_full_tin_check_catches_unmasked_ids_only() {
    assert!(full_tin_problems("id XXX-XX-6789, call 860-297-5962", "6789").is_empty());
    assert!(!full_tin_problems("SSN 123-45-6789", "6789").is_empty());
    assert!(!full_tin_problems("TIN 123456789.", "6789").is_empty());
    assert!(!full_tin_problems("a 987654321 run", "0000").is_empty());
}

/// Every letter of the samples says what letters.md requires, with the
/// amounts of `missive plan` for the same inputs.
#[test]
fn every_sample_letter_says_what_the_spec_requires() {
    let s = samples();
    if !have("pdftotext") {
        return;
    }
    let agency_line = s.config["agency"]["return_address"]["lines"][1]
        .as_str()
        .expect("return address line")
        .to_owned();
    assert_eq!(agency_line, "450 Columbus Blvd.");
    let agency_phone = s.config_str(&["agency", "phone"]);
    assert_eq!(agency_phone, "860-297-5962");
    let review_unit = s.config_str(&["contacts", "review", "unit"]);
    let bankruptcy_phone = s.config_str(&["contacts", "bankruptcy", "phone"]);
    let payment_plan = s.config_str(&["statements", "payment_plan"]);
    let fees = s.config_str(&["statements", "fees"]);

    let mut failures = Vec::new();
    let mut kinds = BTreeSet::new();
    for letter in s.letters() {
        let key = str_at(letter, "/key");
        let kind = str_at(letter, "/kind");
        let variant = letter["variant"].as_str().unwrap_or("-");
        if s.spanish(letter) {
            continue; // English wording below; tests/spanish.rs checks the Spanish letters
        }
        kinds.insert(format!("{kind}/{variant}"));
        let account = &s.accounts[str_at(letter, "/account_id")];
        let subject = key.rsplit('/').next().expect("key subject");
        let raw = layout_text(&s.pdf(key));
        let text = flat(&raw);
        let mut check = Check {
            failures: &mut failures,
            key,
            text: &text,
        };

        // Every letter: its amounts, recipients, agency, contact, masked id, account.
        let amounts = letter["amounts"].as_object().expect("amounts");
        assert!(!amounts.is_empty(), "{key}: the plan gives no amounts");
        for (name, amount) in amounts {
            // `null` (e.g. a review's `to_refer` when nothing is referred) states nothing.
            if amount.is_null() {
                continue;
            }
            check.want(
                &format!("amount {name}"),
                &dollars(amount.as_str().expect("amount string")),
            );
        }
        for name in letter["recipients"].as_array().expect("recipients") {
            check.want("recipient", name.as_str().expect("name"));
        }
        check.want("agency address line", &agency_line);
        check.want("agency phone", &agency_phone);
        let last4 = str_at(account, "/taxpayer/tin_last4");
        check.want("masked taxpayer id", &format!("XXX-XX-{last4}"));
        check.want("account id", str_at(letter, "/account_id"));
        for problem in full_tin_problems(&text, last4) {
            check.fail(&problem);
        }

        match (kind, variant) {
            ("intent_to_offset", _) => {
                let deadline = long_date(iso(str_at(letter, "/deadline")));
                assert_eq!(deadline, "February 1, 2027", "{key}: planned deadline");
                check.want("deadline", &deadline);
                check.want("coupon deadline", &format!("Pay by {deadline}"));
                check.want("review unit", &review_unit);
                for line in s.config["contacts"]["review"]["address"]["lines"]
                    .as_array()
                    .expect("review address lines")
                {
                    check.want("review address", line.as_str().expect("line"));
                }
                check.want("bankruptcy phone", &bankruptcy_phone);
                check.want("payment plan statement", &payment_plan);
                check.want("no-fee statement", &fees);
                check.want("online service", "TSC-IND");
                check.want("certified mail note", "CERTIFIED MAIL");
            }
            (_, variant) => {
                if text.contains("Respond by") {
                    check.fail("only intents to offset have a deadline");
                }
                if matches!(variant, "federal" | "state" | "excess_offset") {
                    let offset = account["offsets"]
                        .as_array()
                        .expect("offsets")
                        .iter()
                        .find(|o| o["id"] == subject)
                        .unwrap_or_else(|| panic!("{key}: no offset {subject}"));
                    let joint = offset["joint_return"] == true;
                    if variant == "federal" {
                        if joint {
                            check.want("injured-spouse form", "Form 8379");
                        } else if text.contains("8379") {
                            check.fail("Form 8379 on a single return");
                        }
                    }
                    if variant == "state" {
                        check.want("receiving agency", str_at(offset, "/agency/name"));
                        check.want("receiving agency phone", str_at(offset, "/agency/phone"));
                        check.want(
                            "receiving agency address",
                            str_at(offset, "/agency/address/line1"),
                        );
                    }
                }
                if variant == "late_return" && amounts["excess_refunded"] == "0.00" {
                    // The excess is barred: say when the limit ran out, and why.
                    let late = account["late_returns"]
                        .as_array()
                        .expect("late returns")
                        .iter()
                        .find(|l| l["id"] == subject)
                        .expect("the late return");
                    let due = late["extended_due_date"]
                        .as_str()
                        .unwrap_or_else(|| str_at(late, "/due_date"));
                    let due = iso(due);
                    let limit = due.with_year(due.year() + 3).expect("limit date");
                    check.want("excess limit date", &long_date(limit));
                    check.want(
                        "excess payments",
                        &dollars(str_at(late, "/excess_payments")),
                    );
                }
            }
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
    for required in [
        "intent_to_offset/-",
        "offset_notice/federal",
        "offset_notice/state",
        "refund/excess_offset",
        "refund/late_return",
        "review_outcome/upheld",
        "review_outcome/reduced",
        "review_outcome/reversed",
    ] {
        assert!(
            kinds.contains(required),
            "samples lack {required}: {kinds:?}"
        );
    }
}

/// Data is text, never Typst markup or code.
#[test]
fn hostile_names_print_verbatim_and_cannot_change_the_page() {
    let dir = tempfile::tempdir().expect("temp dir");
    let accounts = dir.path().join("accounts");
    std::fs::create_dir(&accounts).expect("accounts dir");
    let sample = root().join(SAMPLES).join("01-ito-basic.json");
    let mut account: Value =
        serde_json::from_slice(&std::fs::read(sample).expect("sample")).expect("parses");
    account["taxpayer"]["name"] = NASTY_NAME.into();
    account["address"]["line2"] = NASTY_LINE2.into();
    std::fs::write(
        accounts.join("nasty.json"),
        serde_json::to_vec_pretty(&account).expect("json"),
    )
    .expect("write account");
    let out = dir.path().join("out");
    render_ok(&accounts, &out, &[]);
    let files = pdf_files(&out);
    assert_eq!(files.len(), 1, "one intent to offset: {files:?}");
    let pdf = out.join(files.first().expect("one pdf"));
    if !have("pdftotext") || !have("pdfinfo") {
        return;
    }
    let text = flat(&layout_text(&pdf));
    assert!(
        text.contains(NASTY_NAME),
        "name not verbatim ({NASTY_NAME:?}):\n{text}"
    );
    assert!(
        text.contains(NASTY_LINE2),
        "address line not verbatim ({NASTY_LINE2:?}):\n{text}"
    );
    let pages = pdfinfo_pages(&pdf);
    let plain = samples().pdf("CT-0001001/intent_to_offset/L1");
    assert_eq!(
        pages,
        pdfinfo_pages(&plain),
        "the data added or removed pages"
    );
    let last = pages.to_string();
    let info = tool("pdfinfo", &["-f", "1", "-l", &last], &pdf);
    let sizes: Vec<&str> = info
        .lines()
        .filter(|l| l.starts_with("Page ") && l.contains(" size:"))
        .collect();
    assert_eq!(sizes.len(), pages, "{info}");
    for size in sizes {
        assert!(size.contains("612 x 792 pts"), "not US Letter: {size}");
    }
}

/// The same input gives the same bytes; the mail date is in them.
#[test]
fn rendering_is_deterministic_and_the_mail_date_matters() {
    let s = samples();
    let dir = tempfile::tempdir().expect("temp dir");
    let again = dir.path().join("again");
    render_ok(Path::new(SAMPLES), &again, &["--jobs", "1"]);
    let files = pdf_files(&s.out);
    assert_eq!(files, pdf_files(&again));
    assert_eq!(files.len(), s.letters().len());
    for file in &files {
        let a = std::fs::read(s.out.join(file)).expect("first");
        let b = std::fs::read(again.join(file)).expect("second");
        assert!(a == b, "{file} differs between two renders");
    }
    assert_eq!(
        std::fs::read(s.out.join("render.json")).expect("first render.json"),
        std::fs::read(again.join("render.json")).expect("second render.json"),
    );

    let later = dir.path().join("later");
    let one = Path::new(SAMPLES).join("01-ito-basic.json");
    render_ok(&one, &later, &["--mail-date", "2026-12-02"]);
    let key = "CT-0001001/intent_to_offset/L1";
    let file = s.pdf(key);
    let name = file.file_name().expect("file name");
    let before = std::fs::read(&file).expect("first");
    let after = std::fs::read(later.join(name)).expect("later");
    assert!(before != after, "a different mail date gave the same bytes");
    if have("pdftotext") {
        let text = flat(&layout_text(&later.join(name)));
        assert!(text.contains("December 2, 2026"), "{text}");
    }
}

/// Words of page 1 of `pdf` (text, x_min, y_min, x_max, y_max) in points from the
/// top-left corner, from `pdftotext -bbox`.
fn page_one_words(pdf: &Path) -> Vec<(String, [f64; 4])> {
    let html = pdftotext(&["-bbox", "-f", "1", "-l", "1"], pdf);
    let attr = |line: &str, name: &str| -> f64 {
        let start = line.find(&format!("{name}=\"")).expect("attribute") + name.len() + 2;
        let end = start + line[start..].find('"').expect("closing quote");
        line[start..end].parse().expect("number")
    };
    html.lines()
        .filter(|l| l.trim_start().starts_with("<word "))
        .map(|l| {
            let text = l[l.find('>').expect(">") + 1..l.rfind("</word>").expect("</word>")]
                .replace("&amp;", "&")
                .replace("&lt;", "<")
                .replace("&gt;", ">")
                .replace("&quot;", "\"")
                .replace("&apos;", "'");
            let bbox = [
                attr(l, "xMin"),
                attr(l, "yMin"),
                attr(l, "xMax"),
                attr(l, "yMax"),
            ];
            (text, bbox)
        })
        .collect()
}

/// Rectangle [x0, y0, x1, y1] in points, from inches.
fn inches(x0: f64, y0: f64, x1: f64, y1: f64) -> [f64; 4] {
    [x0 * 72.0, y0 * 72.0, x1 * 72.0, y1 * 72.0]
}

/// Poppler's word boxes span the font's whole ascent and descent, not the ink: a
/// first line whose cap height touches the top of its block reports a box about 0.4pt
/// higher. Boxes may cross a rectangle's edge by this much.
const SLACK: f64 = 1.0;

fn inside(b: [f64; 4], r: [f64; 4]) -> bool {
    b[0] >= r[0] - SLACK && b[1] >= r[1] - SLACK && b[2] <= r[2] + SLACK && b[3] <= r[3] + SLACK
}

/// The words of `line` laid out consecutively on page 1 whose first word lies in
/// `area` (so a name repeated in the coupon doesn't count).
fn line_boxes(words: &[(String, [f64; 4])], line: &str, area: [f64; 4]) -> Vec<[f64; 4]> {
    let wanted: Vec<&str> = line.split_whitespace().collect();
    for start in 0..words.len() {
        let run = &words[start..(start + wanted.len()).min(words.len())];
        if run.len() == wanted.len()
            && run.iter().zip(&wanted).all(|((w, _), want)| w == want)
            && run[0].1[1] < area[3] + 72.0
            && run[0].1[3] > area[1] - 72.0
        {
            return run.iter().map(|(_, b)| *b).collect();
        }
    }
    panic!("{line:?} not found near {area:?} on page 1")
}

/// The address blocks sit in the #10 double-window envelope's windows
/// (geometry in templates/typst/letter.typ).
#[test]
fn addresses_sit_in_the_envelope_windows() {
    let s = samples();
    if !have("pdftotext") {
        return;
    }
    // Recipient: content area of the 4in x 1.125in window at (0.75in, 2.125in),
    // 1/8in clearance on each side.
    let recipient = inches(0.875, 2.25, 4.625, 3.125);
    // Return address: the 3.5in x 1in window at (0.75in, 0.5in).
    let return_window = inches(0.75, 0.5, 4.25, 1.5);
    let agency = s.config_str(&["agency", "name"]);
    let ra = &s.config["agency"]["return_address"];
    let agency_city = format!(
        "{} {} {}",
        ra["city"].as_str().expect("city"),
        ra["state"].as_str().expect("state"),
        ra["zip"].as_str().expect("zip")
    );
    let mut checked = 0;
    for letter in s.letters() {
        let key = str_at(letter, "/key");
        let account = &s.accounts[str_at(letter, "/account_id")];
        let Some(address) = account["address"].as_object() else {
            continue; // e-mail only: nothing in the window
        };
        let words = page_one_words(&s.pdf(key));
        let city = format!(
            "{} {} {}",
            address["city"].as_str().expect("city"),
            address["state"].as_str().expect("state"),
            address["zip"].as_str().expect("zip")
        );
        let names = letter["recipients"].as_array().expect("recipients");
        let mut lines: Vec<&str> = names.iter().map(|n| n.as_str().expect("name")).collect();
        lines.push(address["line1"].as_str().expect("line1"));
        lines.push(&city);
        for line in lines {
            for b in line_boxes(&words, line, recipient) {
                assert!(
                    inside(b, recipient),
                    "{key}: {line:?} at {b:?} is outside the recipient window {recipient:?}"
                );
            }
        }
        for line in [agency.as_str(), "450 Columbus Blvd.", agency_city.as_str()] {
            for b in line_boxes(&words, line, return_window) {
                assert!(
                    inside(b, return_window),
                    "{key}: {line:?} at {b:?} is outside the return window {return_window:?}"
                );
            }
        }
        checked += 1;
    }
    assert!(checked >= 10, "only {checked} letters had an address");
}

/// PDF/A-2b + PDF/UA-1 identification and structure in every sample PDF;
/// `qpdf --check` on each, and `pdfua check` when installed.
#[test]
fn every_pdf_identifies_as_pdfa_2b_and_pdfua_1() {
    let s = samples();
    let files = pdf_files(&s.out);
    assert!(!files.is_empty());
    // Partial PDF/UA checkers from PyPI (veraPDF cannot be installed here). `.ci/run`
    // installs them and sets MISSIVE_REQUIRE_VALIDATORS, so in CI their absence fails.
    let required = std::env::var_os("MISSIVE_REQUIRE_VALIDATORS").is_some();
    let available = |name: &str| {
        let found = Command::new(name).arg("--help").output().is_ok();
        assert!(
            found || !required,
            "`{name}` is required here but not installed"
        );
        if !found {
            eprintln!("notice: `{name}` not installed (pip install {name}), skipping it");
        }
        found
    };
    let pdfua = available("pdfua");
    let outloud = available("outloud");
    for file in &files {
        let path = s.out.join(file);
        let bytes = std::fs::read(&path).expect("read pdf");
        assert!(bytes.starts_with(b"%PDF-1.7"), "{file}: PDF/A-2b means 1.7");
        let doc = Document::load_mem(&bytes).expect("lopdf parses the PDF");
        let catalog = doc.catalog().expect("catalog");
        let xmp = dict_get(&doc, catalog, "Metadata")
            .as_stream()
            .expect("XMP stream")
            .get_plain_content()
            .expect("XMP content");
        let xmp = String::from_utf8_lossy(&xmp);
        for needle in [
            "<pdfaid:part>2</pdfaid:part>",
            "<pdfaid:conformance>B</pdfaid:conformance>",
            "<pdfuaid:part>1</pdfuaid:part>",
        ] {
            assert!(xmp.contains(needle), "{file}: XMP lacks {needle}:\n{xmp}");
        }
        let mark_info = dict_get(&doc, catalog, "MarkInfo")
            .as_dict()
            .expect("MarkInfo");
        assert!(
            dict_get(&doc, mark_info, "Marked").as_bool().expect("bool"),
            "{file}: /Marked"
        );
        assert!(catalog.has(b"StructTreeRoot"), "{file}: StructTreeRoot");
        // A Spanish speaker's letter (samples 31-34) is `es-US`.
        let account = file.split('_').next().expect("file named by key");
        let spanish = s.accounts[account]["language"] == "es";
        assert_eq!(
            dict_get(&doc, catalog, "Lang").as_str().expect("Lang"),
            if spanish { &b"es-US"[..] } else { &b"en"[..] },
            "{file}: /Lang"
        );
        let prefs = dict_get(&doc, catalog, "ViewerPreferences")
            .as_dict()
            .expect("ViewerPreferences");
        assert!(
            dict_get(&doc, prefs, "DisplayDocTitle")
                .as_bool()
                .expect("bool"),
            "{file}: DisplayDocTitle"
        );
        let intents = dict_get(&doc, catalog, "OutputIntents")
            .as_array()
            .expect("OutputIntents");
        assert!(!intents.is_empty(), "{file}: no output intent");
        let intent = deref(&doc, &intents[0]).as_dict().expect("intent");
        assert!(intent.has(b"DestOutputProfile"), "{file}: no ICC profile");

        if have("qpdf") {
            tool("qpdf", &["--check"], &path);
        }
        if pdfua {
            tool("pdfua", &["check"], &path);
        }
        if outloud {
            // TAG-002 flags the page footer (agency, phone, hours) as "prose marked as
            // artifact". It is page furniture, an artifact as PDF/UA asks, and the same
            // facts are real content in every letter's "Questions" section.
            tool("outloud", &["--skip", "TAG-002", "--no-info", "-q"], &path);
        }
    }
}

/// `render.json` is a true index of the files written.
#[test]
fn render_json_lists_every_planned_letter_truthfully() {
    let s = samples();
    let listed = s.summary["letters"].as_array().expect("letters");
    assert_eq!(s.summary["failed"], Value::Array(vec![]));
    let planned: Vec<&str> = s.letters().iter().map(|l| str_at(l, "/key")).collect();
    let written: Vec<&str> = listed.iter().map(|l| str_at(l, "/key")).collect();
    assert_eq!(written, planned, "render.json follows the plan's order");
    let mut files = BTreeSet::new();
    for (entry, letter) in listed.iter().zip(s.letters()) {
        let key = str_at(entry, "/key");
        let file = str_at(entry, "/file");
        assert!(files.insert(file), "{file} listed twice");
        let path = s.out.join(file);
        let bytes = std::fs::read(&path).unwrap_or_else(|_| panic!("{key}: no {file}"));
        assert_eq!(
            str_at(entry, "/sha256"),
            sha256_hex(&bytes),
            "{key}: sha256"
        );
        assert_eq!(
            str_at(entry, "/template"),
            format!(
                "letters/{}{}.typ.tera",
                if s.spanish(letter) { "es/" } else { "" },
                str_at(letter, "/kind")
            ),
            "{key}: template"
        );
        assert_eq!(str_at(entry, "/template_sha256").len(), 64, "{key}");
        let pages = entry["pages"].as_u64().expect("pages") as usize;
        assert!(pages >= 1, "{key}: pages");
        let doc = Document::load_mem(&bytes).expect("parses");
        assert_eq!(doc.get_pages().len(), pages, "{key}: lopdf page count");
        if have("pdfinfo") {
            assert_eq!(pdfinfo_pages(&path), pages, "{key}: pdfinfo page count");
        }
    }
    assert_eq!(
        files.iter().map(|f| f.to_string()).collect::<BTreeSet<_>>(),
        pdf_files(&s.out),
        "the directory holds exactly the listed PDFs"
    );
}

#[test]
fn only_writes_letters_of_that_kind() {
    let s = samples();
    let dir = tempfile::tempdir().expect("temp dir");
    render_ok(Path::new(SAMPLES), dir.path(), &["--only", "refund"]);
    let summary: Value =
        serde_json::from_slice(&std::fs::read(dir.path().join("render.json")).expect("json"))
            .expect("parses");
    let refunds: Vec<&str> = s
        .letters()
        .iter()
        .filter(|l| l["kind"] == "refund")
        .map(|l| str_at(l, "/key"))
        .collect();
    assert!(!refunds.is_empty());
    let keys: Vec<&str> = summary["letters"]
        .as_array()
        .expect("letters")
        .iter()
        .map(|l| str_at(l, "/key"))
        .collect();
    assert_eq!(keys, refunds);
    let files = pdf_files(dir.path());
    assert_eq!(files.len(), refunds.len(), "{files:?}");
    assert!(files.iter().all(|f| f.contains("_refund_")), "{files:?}");
}

/// A copy of `templates/` with `edit` applied to `letters/<name>`.
fn broken_templates(name: &str, edit: impl FnOnce(String) -> String) -> tempfile::TempDir {
    let dir = tempfile::tempdir().expect("temp dir");
    copy_tree(&root().join("templates"), dir.path());
    let path = dir.path().join("letters").join(name);
    let text = std::fs::read_to_string(&path).expect("template");
    std::fs::write(&path, edit(text)).expect("write template");
    dir
}

#[test]
fn an_unfiltered_expression_stops_before_anything_is_written() {
    let templates = broken_templates("refund.typ.tera", |t| {
        t.replacen(
            "{% include \"letters/_header.typ.tera\" %}\n",
            "{% include \"letters/_header.typ.tera\" %}\nDear {{ account.name }},\n",
            1,
        )
    });
    let out = tempfile::tempdir().expect("temp dir");
    let output = render(
        Path::new(SAMPLES),
        out.path(),
        &["--templates", templates.path().to_str().expect("utf-8")],
    );
    assert_eq!(output.status.code(), Some(2), "{}", describe(&output));
    let stderr = String::from_utf8_lossy(&output.stderr);
    for needle in ["letters/refund.typ.tera", "{{ account.name }}", "filter"] {
        assert!(
            stderr.contains(needle),
            "stderr lacks {needle:?}:\n{stderr}"
        );
    }
    assert!(pdf_files(out.path()).is_empty());
    assert!(!out.path().join("render.json").exists());
}

/// A per-letter failure (unknown variable, or Typst that doesn't compile) fails that
/// letter only: reported by key, the others written, exit 1.
fn one_kind_fails(edit: impl FnOnce(String) -> String, reason: &str) {
    let s = samples();
    let templates = broken_templates("review_outcome.typ.tera", edit);
    let out = tempfile::tempdir().expect("temp dir");
    let output = render(
        Path::new(SAMPLES),
        out.path(),
        &["--templates", templates.path().to_str().expect("utf-8")],
    );
    assert_eq!(output.status.code(), Some(1), "{}", describe(&output));
    let stderr = String::from_utf8_lossy(&output.stderr);
    let (failing, fine): (Vec<&Value>, Vec<&Value>) = s
        .letters()
        .iter()
        .partition(|l| l["kind"] == "review_outcome" && !s.spanish(l));
    assert!(!failing.is_empty() && !fine.is_empty());
    let summary: Value =
        serde_json::from_slice(&std::fs::read(out.path().join("render.json")).expect("json"))
            .expect("parses");
    let failed: Vec<&str> = summary["failed"]
        .as_array()
        .expect("failed")
        .iter()
        .map(|f| str_at(f, "/key"))
        .collect();
    for letter in &failing {
        let key = str_at(letter, "/key");
        assert!(
            stderr.contains(&format!("letter `{key}`")),
            "stderr lacks {key}:\n{stderr}"
        );
        assert!(failed.contains(&key), "render.json failed[] lacks {key}");
    }
    assert_eq!(failed.len(), failing.len(), "{failed:?}");
    assert!(
        stderr.contains(reason),
        "stderr lacks {reason:?}:\n{stderr}"
    );
    let files = pdf_files(out.path());
    assert_eq!(files.len(), fine.len(), "{files:?}");
    for letter in fine {
        let key = str_at(letter, "/key");
        let name = s.pdf(key).file_name().expect("name").to_owned();
        assert!(
            out.path().join(&name).is_file(),
            "{key} was not written despite the other failures"
        );
    }
}

#[test]
fn an_unknown_variable_fails_only_those_letters() {
    one_kind_fails(
        |t| {
            t.replacen("{{ review.id | str }}", "{{ review.case_number | str }}", 1)
            .replacen(
                "{% include \"letters/_header.typ.tera\" %}\n",
                "{% include \"letters/_header.typ.tera\" %}\nCase #{{ review.case_number | str }}\n",
                1,
            )
        },
        "case_number",
    );
}

#[test]
fn typst_that_does_not_compile_fails_only_those_letters() {
    one_kind_fails(
        |t| {
            t.replacen(
                "{% include \"letters/_footer.typ.tera\" %}",
                "#no-such-function()\n{% include \"letters/_footer.typ.tera\" %}",
                1,
            )
        },
        "no-such-function",
    );
}

#[test]
fn a_template_error_names_the_letter_once() {
    let templates = broken_templates("review_outcome.typ.tera", |t| {
        t.replacen(
            "{{ review.decided_on | date }}",
            "{{ review.case_number | str }}",
            1,
        )
    });
    let out = tempfile::tempdir().expect("temp dir");
    let output = render(
        Path::new(SAMPLES),
        out.path(),
        &["--templates", templates.path().to_str().expect("utf-8")],
    );
    assert_eq!(output.status.code(), Some(1), "{}", describe(&output));
    let stderr = String::from_utf8_lossy(&output.stderr);
    let key = "CT-0001013/review_outcome/R1";
    let line = stderr
        .lines()
        .find(|l| l.contains(key))
        .unwrap_or_else(|| panic!("no line for {key}:\n{stderr}"));
    assert_eq!(line.matches(key).count(), 1, "{line}");
    let summary: Value =
        serde_json::from_slice(&std::fs::read(out.path().join("render.json")).expect("json"))
            .expect("parses");
    let message = str_at(&summary, "/failed/0/message");
    assert!(!message.contains(key), "message repeats the key: {message}");
}

#[test]
fn a_letter_that_fails_on_rerun_leaves_no_old_file_behind() {
    let out = tempfile::tempdir().expect("temp dir");
    let first = render(Path::new(SAMPLES), out.path(), &[]);
    assert_eq!(first.status.code(), Some(0), "{}", describe(&first));
    let old = out.path().join("CT-0001013_review_outcome_R1.pdf");
    assert!(old.is_file());
    let templates = broken_templates("review_outcome.typ.tera", |t| {
        t.replacen(
            "{{ review.decided_on | date }}",
            "{{ review.case_number | str }}",
            1,
        )
    });
    let second = render(
        Path::new(SAMPLES),
        out.path(),
        &["--templates", templates.path().to_str().expect("utf-8")],
    );
    assert_eq!(second.status.code(), Some(1), "{}", describe(&second));
    assert!(
        !old.exists(),
        "a PDF from the earlier run must not survive under the final name of a letter that failed"
    );
    assert!(
        out.path()
            .join("CT-0001001_intent_to_offset_L1.pdf")
            .is_file()
    );
}
