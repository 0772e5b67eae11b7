//! What the sample letters say, read back from their PDFs: one test per finding of issue
//! 12 ("Letters that tell one true story"), the letter-facts check (`missive check`) on the
//! samples, on synthetic accounts and on templates broken on purpose, links in the PDF,
//! and `insta` snapshots of every sample letter's text (`tests/snapshots/letters__<key>.snap`,
//! named by the letter key with `/` as `_`: `INSTA_UPDATE=always cargo test --test letters`
//! writes new ones, then read the diff).
//!
//! Needs poppler's `pdftotext` (`apt-get install -y poppler-utils`); without it these
//! tests print a notice and pass vacuously, like `tests/render.rs`.

mod common;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

use common::{array, have_pdftotext, missive, pdftotext, root};
use lopdf::{Document, Object};
use missive::review::facts::{dollar_amounts, flatten};
use serde_json::Value;

const AS_OF: &str = "2026-12-01";

/// The samples rendered once per test binary, with their plan and texts.
struct Rendered {
    out: PathBuf,
    plan: Value,
    /// Key → flattened text (reading order).
    text: BTreeMap<String, String>,
    /// Ids of the sample accounts whose `language` is `es`.
    spanish: Vec<String>,
}

impl Rendered {
    fn letter(&self, key: &str) -> &Value {
        common::letter(&self.plan, key)
    }

    fn text(&self, key: &str) -> &str {
        self.text
            .get(key)
            .unwrap_or_else(|| panic!("no rendered letter {key}"))
    }

    fn pdf(&self, key: &str) -> PathBuf {
        self.out.join(format!("{}.pdf", key.replace('/', "_")))
    }

    /// Keys of the planned English letters of this kind (and variant); the Spanish
    /// samples' letters (31-34) are checked in Spanish by `tests/spanish.rs`.
    fn keys(&self, kind: &str, variant: Option<&str>) -> Vec<String> {
        array(&self.plan["letters"])
            .iter()
            .filter(|l| l["kind"] == kind && variant.is_none_or(|v| l["variant"] == v))
            .filter(|l| !self.spanish.iter().any(|id| l["account_id"] == id.as_str()))
            .map(|l| l["key"].as_str().expect("key").to_owned())
            .collect()
    }
}

fn rendered() -> Option<&'static Rendered> {
    static RENDERED: OnceLock<Option<Rendered>> = OnceLock::new();
    RENDERED
        .get_or_init(|| {
            if !have_pdftotext() {
                return None;
            }
            let out = Path::new(env!("CARGO_TARGET_TMPDIR"))
                .join(format!("letters-samples-{}", std::process::id()));
            let _ = std::fs::remove_dir_all(&out);
            let dir = out.to_str().expect("utf-8").to_owned();
            missive(&[
                "render",
                "--accounts",
                "samples/accounts",
                "--as-of",
                AS_OF,
                "--out",
                &dir,
            ])
            .expect_code(0);
            let plan = common::plan_ok("samples/accounts", &["--as-of", AS_OF]);
            let mut text = BTreeMap::new();
            for letter in array(&plan["letters"]) {
                let key = letter["key"].as_str().expect("key").to_owned();
                let pdf = out.join(format!("{}.pdf", key.replace('/', "_")));
                text.insert(key, flatten(&pdftotext(&pdf, false)));
            }
            let spanish = std::fs::read_dir(common::root().join("samples/accounts"))
                .expect("samples")
                .filter_map(|e| {
                    let text = std::fs::read_to_string(e.ok()?.path()).ok()?;
                    let account: Value = serde_json::from_str(&text).ok()?;
                    (account["language"] == "es")
                        .then(|| account["account_id"].as_str().map(str::to_owned))?
                })
                .collect();
            Some(Rendered {
                out,
                plan,
                text,
                spanish,
            })
        })
        .as_ref()
}

fn money(amount: &Value) -> String {
    let text = amount.as_str().expect("amount string");
    missive::money::Money::parse(text)
        .expect("amount")
        .dollars()
}

/// Every sample letter's text, as `pdftotext -layout` lays it out, is its snapshot.
#[test]
fn sample_letter_texts_match_their_snapshots() {
    let Some(r) = rendered() else { return };
    for key in r.text.keys() {
        let layout = pdftotext(&r.pdf(key), true);
        let text: String = layout
            .lines()
            .map(|l| format!("{}\n", l.trim_end()))
            .collect();
        insta::assert_snapshot!(key.replace('/', "_"), text);
    }
}

/// Finding 1: a reduced review says it refers exactly what the same run refers.
#[test]
fn finding_1_reduced_review_refers_what_the_referral_refers() {
    let Some(r) = rendered() else { return };
    let key = "CT-0001014/review_outcome/R1";
    let to_refer = &r.letter(key)["amounts"]["to_refer"];
    let referrals = common::referrals(&r.plan, "CT-0001014");
    assert_eq!(referrals.len(), 1, "{referrals:?}");
    assert_eq!(
        to_refer, &referrals[0]["amount"],
        "to_refer vs the referral"
    );
    let text = r.text(key);
    let refer = format!("refer {}", money(to_refer));
    assert!(text.contains(&refer), "{key} lacks “{refer}”: {text}");
    assert!(!text.contains("refer only $2,450.00"), "{text}");
}

/// Finding 2: a federal offset notice beside the refund letter of the same day says the
/// excess was refunded (naming that letter), never "once the payment has posted".
#[test]
fn finding_2_posted_excess_points_to_the_refund_letter() {
    let Some(r) = rendered() else { return };
    let notice = r.text("CT-0001007/offset_notice/F2026-1");
    assert!(r.text.contains_key("CT-0001007/refund/F2026-1"));
    assert!(!notice.contains("once the payment has posted"), "{notice}");
    assert!(
        notice.contains("We Are Refunding the Excess of Your Federal Offset"),
        "{notice}"
    );
    assert!(
        notice.contains("posted to your account on October 28, 2026"),
        "{notice}"
    );
    // The unposted excess (09) still says it will come, and has no refund letter.
    let unposted = r.text("CT-0001009/offset_notice/F2026-1");
    assert!(
        unposted.contains("once the payment has posted"),
        "{unposted}"
    );
    assert!(!r.text.contains_key("CT-0001009/refund/F2026-1"));
}

/// Finding 3: no referral beside an offset notice saying nothing remains.
#[test]
fn finding_3_no_referral_beside_a_zero_remaining_balance() {
    let Some(r) = rendered() else { return };
    for key in r.keys("offset_notice", Some("federal")) {
        let letter = r.letter(&key);
        if letter["amounts"]["remaining_balance"] == "0.00" {
            let account = letter["account_id"].as_str().expect("account");
            let referrals = common::referrals(&r.plan, account);
            assert!(
                referrals.is_empty(),
                "{key}: $0.00 remains, yet {referrals:?}"
            );
        }
    }
}

/// Finding 4: review letters that leave a debt tell how to pay (payee, address, TSC-IND),
/// that interest continues, and mention no coupon (they print none).
#[test]
fn finding_4_review_letters_tell_how_to_pay_without_a_coupon() {
    let Some(r) = rendered() else { return };
    let mut keys = r.keys("review_outcome", Some("upheld"));
    keys.extend(r.keys("review_outcome", Some("reduced")));
    assert!(keys.len() >= 2, "{keys:?}");
    for key in keys {
        let text = r.text(&key);
        for needle in [
            "payable to Commissioner of Revenue Services",
            "450 Columbus Blvd.",
            "TSC-IND",
            "is still added each month",
        ] {
            assert!(text.contains(needle), "{key} lacks “{needle}”: {text}");
        }
        assert!(!text.to_lowercase().contains("coupon"), "{key}: {text}");
    }
}

/// Finding 5: "all of your refund" when all of it was taken, "part of" otherwise.
#[test]
fn finding_5_all_of_or_part_of_the_refund() {
    let Some(r) = rendered() else { return };
    let keys = r.keys("offset_notice", None);
    let mut all = 0;
    for key in &keys {
        let amounts = &r.letter(key)["amounts"];
        let text = r.text(key);
        let (right, wrong) = if amounts["offset"] == amounts["refund"] {
            all += 1;
            ("all of your", "part of your")
        } else {
            ("part of your", "all of your")
        };
        assert!(text.contains(right), "{key} lacks “{right}”: {text}");
        assert!(!text.contains(wrong), "{key} says “{wrong}”: {text}");
    }
    assert!(all >= 2, "the samples take all of a refund twice (08, 23)");
    assert!(
        r.text("CT-0001008/offset_notice/F2026-1")
            .contains("all of your")
    );
}

/// Finding 6: a reversed review shows no balance but the $0.00 owed.
#[test]
fn finding_6_reversed_review_shows_no_other_balance() {
    let Some(r) = rendered() else { return };
    let keys = r.keys("review_outcome", Some("reversed"));
    assert!(!keys.is_empty());
    for key in keys {
        let text = r.text(&key);
        let amounts = dollar_amounts(text);
        assert_eq!(amounts, ["$0.00"], "{key}: {text}");
        assert!(!text.contains("Balance on record"), "{text}");
    }
}

/// Finding 7: the intent to offset states everything letters.md lists.
#[test]
fn finding_7_intent_to_offset_states_every_element() {
    let Some(r) = rendered() else { return };
    let keys = r.keys("intent_to_offset", None);
    assert!(keys.len() >= 5);
    for key in &keys {
        let text = r.text(key);
        for needle in [
            "As of ",
            "right to see and copy our records",
            "payment agreement",
            "A payment plan does not stop an offset",
            "Debt Collection Improvement Act",
            "26 U.S.C. 6402(e)",
            "you must still file your tax returns",
            "If you did not file a return",
            "Collections Unit - Warrants",
            "860-297-5843",
            "860-297-5921",
        ] {
            assert!(text.contains(needle), "{key} lacks “{needle}”: {text}");
        }
        let replaces = text.contains("This notice replaces the notice");
        assert_eq!(replaces, key.starts_with("CT-0001022/"), "{key}: {text}");
    }
    let reissue = r.text("CT-0001022/intent_to_offset/L1+L2");
    assert!(
        reissue.contains("replaces the notice we mailed to you on June 1, 2026"),
        "{reissue}"
    );
}

// Finding 9 (emails: subject, greeting, the copy's wording) is tested where emails are
// composed: `src/dispatch/tests.rs`, `emails_carry_the_title_and_greet_every_recipient`.

/// Finding 10: plain language.
#[test]
fn finding_10_plain_language() {
    let Some(r) = rendered() else { return };
    for key in r.keys("review_outcome", Some("upheld")) {
        let text = r.text(&key);
        assert!(!text.contains("not past due, not"), "{key}: {text}");
    }
    for key in r.keys("offset_notice", Some("state")) {
        let text = r.text(&key);
        assert!(!text.contains("to Department"), "{key}: {text}");
    }
    let state = r.text("CT-0001010/offset_notice/S2026-1");
    assert!(
        state.contains("write to the Department of Social Services"),
        "{state}"
    );
    for key in r.keys("intent_to_offset", None) {
        let text = r.text(&key);
        let first = text.find("SIS Unit").expect("SIS Unit named");
        assert!(
            text[first..].starts_with("SIS Unit, the unit that reviews disputed debts"),
            "{key}: the first “SIS Unit” is not explained: {}",
            &text[first..first + 80]
        );
    }
    let several = r.text("CT-0001002/intent_to_offset/L12+L3+L9");
    let at = |period: &str| {
        several
            .find(&format!("{period} Individual income tax"))
            .unwrap_or_else(|| panic!("no {period} row: {several}"))
    };
    assert!(
        at("2012") < at("2021") && at("2021") < at("2023"),
        "{several}"
    );
}

/// Web and email addresses are links: a Link annotation with its URI, inside a `Link`
/// structure element (Typst's tagged `link`).
#[test]
fn web_and_email_addresses_are_links() {
    let Some(r) = rendered() else { return };
    let check = |key: &str, wanted: &[&str]| {
        let doc = Document::load(r.pdf(key)).expect("PDF loads");
        let mut uris = Vec::new();
        let mut annotations = Vec::new();
        for (id, object) in &doc.objects {
            let Ok(dict) = object.as_dict() else { continue };
            if dict.get(b"Subtype").and_then(Object::as_name).ok() == Some(b"Link".as_slice()) {
                annotations.push(*id);
                if let Ok(action) = dict.get(b"A") {
                    let action = doc.dereference(action).expect("action").1;
                    if let Ok(uri) = action.as_dict().and_then(|a| a.get(b"URI")) {
                        let uri = uri.as_str().expect("URI string");
                        uris.push(String::from_utf8_lossy(uri).into_owned());
                    }
                }
            }
        }
        for want in wanted {
            assert!(
                uris.iter().any(|u| u == want),
                "{key}: {want} not in {uris:?}"
            );
        }
        // Each annotation is the object of a `Link` structure element.
        let mut linked = Vec::new();
        for object in doc.objects.values() {
            let Ok(dict) = object.as_dict() else { continue };
            if dict.get(b"S").and_then(Object::as_name).ok() != Some(b"Link".as_slice()) {
                continue;
            }
            let kids = match dict.get(b"K") {
                Ok(Object::Array(kids)) => kids.clone(),
                Ok(other) => vec![other.clone()],
                Err(_) => Vec::new(),
            };
            for kid in kids {
                let kid = doc.dereference(&kid).expect("kid").1;
                if let Ok(kid) = kid.as_dict()
                    && kid.get(b"Type").and_then(Object::as_name).ok() == Some(b"OBJR".as_slice())
                    && let Ok(Object::Reference(obj)) = kid.get(b"Obj")
                {
                    linked.push(*obj);
                }
            }
        }
        for id in &annotations {
            assert!(
                linked.contains(id),
                "{key}: annotation {id:?} is in no Link element"
            );
        }
    };
    check(
        "CT-0001001/intent_to_offset/L1",
        &["mailto:drs@po.state.ct.us", "https://portal.ct.gov/DRS"],
    );
    check("CT-0001007/offset_notice/F2026-1", &["https://www.irs.gov"]);
}

/// `missive check` passes every shipped template on the samples with no warning, and
/// holds every letter against its plan.
#[test]
fn check_passes_the_samples_without_warnings() {
    if !have_pdftotext() {
        return;
    }
    let run = missive(&["check"]);
    run.expect_code(0);
    assert!(!run.stderr.contains("warning:"), "{}", run.stderr);
    let letters = array(&common::plan_ok("samples/accounts", &["--as-of", AS_OF])["letters"]).len();
    assert!(
        run.stderr.contains(&format!(
            "({letters} against the plan, read back from the PDF; "
        )),
        "{}",
        run.stderr
    );
}

/// The facts check fails on a letter that says something its plan does not, naming the
/// letter, the fact and what the PDF says instead.
#[test]
fn check_fails_a_letter_that_contradicts_its_plan() {
    if !have_pdftotext() {
        return;
    }
    let fixture = common::Fixture::from_dir("templates");
    let templates = fixture.path().to_owned();
    let edit = |name: &str, from: &str, to: &str| {
        let path = templates.join("letters").join(name);
        let text = std::fs::read_to_string(&path).expect("template");
        assert!(text.contains(from), "{name} lacks {from}");
        std::fs::write(&path, text.replace(from, to)).expect("write");
    };
    // Always "part of", and a reversed review that shows the balance on record.
    edit(
        "offset_notice.typ.tera",
        "{% set share = \"all of\" %}",
        "{% set share = \"part of\" %}",
    );
    edit(
        "review_outcome.typ.tera",
        "You owe #{{ letter.amounts.balance | money }} for these periods.",
        "You owe #{{ letter.amounts.balance | money }} for these periods. Balance on record #{{ review.liabilities.0.balance | money }}.",
    );
    // And an email subject that is not the letter's title.
    std::fs::write(
        templates.join("email/intent_to_offset.subject.tera"),
        "Your notice",
    )
    .expect("write");
    let t = templates.display().to_string();
    let run = missive(&["check", "--templates", &t]);
    run.expect_code(1);
    let err = &run.stderr;
    assert!(
        err.contains("`CT-0001008/offset_notice/F2026-1`: “all of your” refund")
            && err.contains("the PDF says “part of your”"),
        "{err}"
    );
    assert!(
        err.contains("`: the email's subject is the letter's title “Notice of Intent to Offset Your Federal Tax Refund”; the email subject is “Your notice”"),
        "{err}"
    );
    assert!(
        err.contains("`CT-0001015/review_outcome/R2`: only the plan's amounts for this letter ($0.00, $25.00); the PDF also shows $"),
        "{err}"
    );
}

/// The facts check on ≥ 1 000 synthetic letters from `bench/gen_accounts.py`.
#[test]
fn check_holds_a_thousand_synthetic_letters_to_their_plan() {
    if !have_pdftotext() {
        return;
    }
    let Ok(python) = Command::new("python3").arg("--version").output() else {
        eprintln!("notice: python3 not installed, skipping");
        return;
    };
    assert!(python.status.success());
    let dir = tempfile::tempdir().expect("temp dir");
    let accounts = dir.path().join("synthetic.jsonl");
    let status = Command::new("python3")
        .arg(root().join("bench/gen_accounts.py"))
        .args(["--count", "1100", "--seed", "12", "--out"])
        .arg(&accounts)
        .status()
        .expect("generator runs");
    assert!(status.success());
    let path = accounts.display().to_string();
    let run = missive(&["check", "--accounts", &path, "--as-of", AS_OF]);
    // Every letter error counts; only the variable-coverage lint (a property of the sample
    // set: synthetic data has, e.g., no state offsets) is not about these letters.
    let errors: Vec<&str> = run
        .stderr
        .lines()
        .filter(|l| l.starts_with("error:") && !l.ends_with("which no letter's context provides"))
        .collect();
    assert!(errors.is_empty(), "{}", errors.join("\n"));
    let checked: usize = run
        .stderr
        .split(" against the plan")
        .next()
        .and_then(|s| s.rsplit('(').next())
        .and_then(|n| n.trim().parse().ok())
        .unwrap_or_else(|| panic!("no count in {}", run.stderr));
    assert!(checked >= 1000, "only {checked} letters checked");
}

/// Before the notice's deadline, a review letter says what is referred "if you do not pay
/// by" that deadline (and the facts check holds it to the plan).
#[test]
fn before_the_deadline_the_review_letter_says_if_not_paid_by() {
    if !have_pdftotext() {
        return;
    }
    let dir = tempfile::tempdir().expect("temp dir");
    let accounts = dir.path().join("accounts");
    std::fs::create_dir(&accounts).expect("dir");
    let name = "13-review-upheld-and-pending.json";
    let mut account: Value = serde_json::from_slice(
        &std::fs::read(root().join("samples/accounts").join(name)).expect("sample"),
    )
    .expect("json");
    // Mailed 2026-11-02: 60 days end Friday 2027-01-01 (New Year's Day), so the deadline
    // is Monday 2027-01-04, after the as-of date.
    account["notices"][0]["mailed_on"] = "2026-11-02".into();
    account["reviews"][0]["decided_on"] = "2026-11-20".into();
    std::fs::write(accounts.join(name), account.to_string()).expect("write");
    let path = accounts.display().to_string();
    let check = missive(&["check", "--accounts", &path, "--as-of", AS_OF]);
    assert!(!check.stderr.contains("error: `CT-"), "{}", check.stderr);
    let out = dir.path().join("out").display().to_string();
    missive(&[
        "render",
        "--accounts",
        &path,
        "--as-of",
        AS_OF,
        "--out",
        &out,
    ])
    .expect_code(0);
    let plan = common::plan_ok(&path, &["--as-of", AS_OF]);
    let key = "CT-0001013/review_outcome/R1";
    let to_refer = money(&common::letter(&plan, key)["amounts"]["to_refer"]);
    let pdf = dir
        .path()
        .join("out")
        .join(format!("{}.pdf", key.replace('/', "_")));
    let text = flatten(&pdftotext(&pdf, false));
    let wanted = format!("If you do not pay by January 4, 2027, we will refer {to_refer}");
    assert!(text.contains(&wanted), "lacks “{wanted}”: {text}");
}
