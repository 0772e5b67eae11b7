//! Property tests: whatever the bytes of an account file, loading and deciding never
//! panic, and the plan does not depend on the order of the accounts.
//!
//! These call the library directly (`load::parse_account`, `decide::decide`,
//! `plan::plan_batch`) rather than the binary, so a few hundred cases run in well under a
//! second in the dev profile.

use std::sync::LazyLock;

use chrono::NaiveDate;
use proptest::prelude::*;
use serde_json::{Value, json};

use missive::calendar::HolidayCalendar;
use missive::config::{BUILT_IN, Config};
use missive::decide::{DecideContext, decide};
use missive::load::{RawRecord, parse_account};
use missive::plan::{PriorNotices, plan_batch};

static CONFIG: LazyLock<Config> =
    LazyLock::new(|| Config::parse(BUILT_IN).expect("the built-in configuration parses"));
static CALENDAR: LazyLock<HolidayCalendar> = LazyLock::new(|| CONFIG.holiday_calendar());

fn date(text: &str) -> NaiveDate {
    NaiveDate::parse_from_str(text, "%Y-%m-%d").expect("test date")
}

fn context(as_of: NaiveDate, mail_date: NaiveDate) -> DecideContext<'static> {
    DecideContext {
        as_of,
        mail_date,
        policy: &CONFIG.policy,
        calendar: &CALENDAR,
    }
}

/// Every sample and fixture account, as compact JSON lines (one per account).
static ACCOUNT_LINES: LazyLock<Vec<String>> = LazyLock::new(|| {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut files = Vec::new();
    collect_json(&root.join("samples/accounts"), &mut files);
    for rule in std::fs::read_dir(root.join("tests/fixtures")).expect("tests/fixtures") {
        let accounts = rule.expect("entry").path().join("accounts");
        if accounts.is_dir() {
            collect_json(&accounts, &mut files);
        }
    }
    files.sort();
    files
        .iter()
        .map(|path| {
            let text = std::fs::read_to_string(path).expect("read account");
            let value: Value = serde_json::from_str(&text).expect("fixture account is JSON");
            value.to_string()
        })
        .collect()
});

fn collect_json(dir: &std::path::Path, out: &mut Vec<std::path::PathBuf>) {
    for entry in std::fs::read_dir(dir).expect("read dir") {
        let path = entry.expect("entry").path();
        if path.is_dir() {
            collect_json(&path, out);
        } else if path.extension().is_some_and(|e| e == "json") {
            out.push(path);
        }
    }
}

/// The parsed accounts, as JSON values, for mutation.
static ACCOUNT_VALUES: LazyLock<Vec<Value>> = LazyLock::new(|| {
    ACCOUNT_LINES
        .iter()
        .map(|l| serde_json::from_str(l).expect("JSON"))
        .collect()
});

/// Loads `bytes` as one account and, if it loads, decides it at several dates. Panics are
/// what the properties look for; the results themselves are not checked here.
fn load_and_decide(bytes: Vec<u8>, dates: &[(NaiveDate, NaiveDate)]) -> bool {
    let record = RawRecord {
        source: "prop.json".to_owned(),
        bytes,
    };
    match parse_account(&record) {
        Ok(account) => {
            for &(as_of, mail_date) in dates {
                let decision = decide(&account, &[], &context(as_of, mail_date));
                // The decision serialises (as the plan printer does).
                for letter in &decision.letters {
                    serde_json::to_string(letter).expect("letter serialises");
                }
                // Ledger notices count like the account's own.
                let _ = decide(&account, &account.notices, &context(as_of, mail_date));
            }
            true
        }
        Err(err) => {
            assert_eq!(err.source, "prop.json");
            assert!(
                !err.problems.is_empty(),
                "an error names at least one problem"
            );
            false
        }
    }
}

/// Dates the command line can give (years 0000–9999), weighted towards interesting ones.
fn any_date() -> impl Strategy<Value = NaiveDate> {
    prop_oneof![
        3 => (2015i32..=2030, 1u32..=12, 1u32..=31).prop_filter_map("real date", |(y, m, d)| {
            NaiveDate::from_ymd_opt(y, m, d)
        }),
        1 => (0i32..=9999, 1u32..=12, 1u32..=28)
            .prop_map(|(y, m, d)| NaiveDate::from_ymd_opt(y, m, d).expect("valid")),
        1 => prop::sample::select(vec![
            date("0000-01-01"),
            date("9999-12-31"),
            date("2024-02-29"),
            date("2026-12-31"),
            date("2027-01-01"),
        ]),
    ]
}

fn some_dates() -> impl Strategy<Value = Vec<(NaiveDate, NaiveDate)>> {
    prop::collection::vec((any_date(), any_date()), 1..3)
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    /// (a) Arbitrary bytes as an account file.
    #[test]
    fn arbitrary_bytes_never_panic(
        bytes in prop::collection::vec(any::<u8>(), 0..300),
        dates in some_dates(),
    ) {
        load_and_decide(bytes, &dates);
    }

    /// (a) A real account with a few bytes overwritten, inserted or removed: mostly broken
    /// JSON, sometimes a valid account with odd values.
    #[test]
    fn byte_edits_of_real_accounts_never_panic(
        index in any::<prop::sample::Index>(),
        edits in prop::collection::vec((any::<prop::sample::Index>(), 0u8..3, any::<u8>()), 1..6),
        dates in some_dates(),
    ) {
        let mut bytes = index.get(&ACCOUNT_LINES).clone().into_bytes();
        for (at, op, byte) in edits {
            if bytes.is_empty() {
                break;
            }
            let at = at.index(bytes.len());
            match op {
                0 => bytes[at] = byte,
                1 => bytes.insert(at, byte),
                _ => {
                    bytes.remove(at);
                }
            }
        }
        load_and_decide(bytes, &dates);
    }
}

/// Replacement values for mutated fields: wrong types, extremes, edge dates and amounts.
fn odd_value() -> impl Strategy<Value = Value> {
    prop::sample::select(vec![
        Value::Null,
        json!(""),
        json!(" "),
        json!("x"),
        json!(0),
        json!(-1),
        json!(1.5),
        json!(1e300),
        json!(u64::MAX),
        json!(true),
        json!([]),
        json!({}),
        json!(["L1"]),
        json!("L1"),
        json!("0.00"),
        json!("-0.00"),
        json!("0.01"),
        json!("-5.00"),
        json!("25.00"),
        json!("999999999999.99"),
        json!("-999999999999.99"),
        json!("1000000000000.00"),
        json!("99999999999999999999999.99"),
        json!("1e5"),
        json!("1.234"),
        json!("0000-01-01"),
        json!("9999-12-31"),
        json!("2024-02-29"),
        json!("2023-02-29"),
        json!("2016-12-01"),
        json!("2026-12-01"),
        json!("+2026-12-01"),
        json!("federal"),
        json!("state"),
        json!("pending"),
        json!("reduced"),
        json!("reversed"),
        json!("upheld"),
        json!("intent_to_offset"),
        json!("refund"),
        json!("a@b.co"),
        json!("L1/L2"),
        json!("\u{0}"),
        json!("x".repeat(300)),
    ])
}

/// Every JSON pointer in `value` (objects' keys and arrays' elements, depth first).
fn pointers(value: &Value, at: String, out: &mut Vec<String>) {
    match value {
        Value::Object(map) => {
            for (key, child) in map {
                let path = format!("{at}/{key}");
                out.push(path.clone());
                pointers(child, path, out);
            }
        }
        Value::Array(items) => {
            for (i, child) in items.iter().enumerate() {
                let path = format!("{at}/{i}");
                out.push(path.clone());
                pointers(child, path, out);
            }
        }
        _ => {}
    }
}

/// One structural mutation of an account.
#[derive(Debug, Clone)]
enum Mutation {
    /// Remove the field or element at the pointer.
    Remove(prop::sample::Index),
    /// Replace the value at the pointer.
    Replace(prop::sample::Index, Value),
    /// Duplicate the element at the pointer (when it is in an array).
    Duplicate(prop::sample::Index),
    /// Replace the value at the pointer by another of the same shape (a date by another
    /// date, an amount by another amount, a boolean by its opposite), so that the account
    /// usually still loads and reaches `decide` with extreme values.
    Similar(prop::sample::Index, u64),
}

/// A value of the same shape as `old`, chosen by `seed`.
fn similar(old: &Value, seed: u64) -> Option<Value> {
    match old {
        Value::Bool(b) => Some(Value::Bool(!b)),
        Value::String(text) if missive::load::parse_iso_date(text).is_some() => {
            const DATES: [&str; 8] = [
                "0000-01-01",
                "9999-12-31",
                "2016-11-30",
                "2016-12-01",
                "2024-02-29",
                "2026-12-01",
                "2026-12-02",
                "2027-02-01",
            ];
            let generated = format!(
                "{:04}-{:02}-{:02}",
                seed % 10_000,
                (seed / 10_000) % 12 + 1,
                (seed / 120_000) % 28 + 1
            );
            Some(match seed % 3 {
                0 => json!(DATES[(seed / 3) as usize % DATES.len()]),
                _ => json!(generated),
            })
        }
        Value::String(text) if missive::money::Money::parse(text).is_ok() => {
            const AMOUNTS: [&str; 9] = [
                "0.00",
                "0.01",
                "0.50",
                "24.99",
                "25.00",
                "999999999999.99",
                "-0.01",
                "3.50",
                "100000000000",
            ];
            Some(match seed % 3 {
                0 => json!(AMOUNTS[(seed / 3) as usize % AMOUNTS.len()]),
                _ => json!(format!(
                    "{}.{:02}",
                    (seed / 100) % 1_000_000_000_000,
                    seed % 100
                )),
            })
        }
        _ => None,
    }
}

fn mutation() -> impl Strategy<Value = Mutation> {
    prop_oneof![
        1 => any::<prop::sample::Index>().prop_map(Mutation::Remove),
        3 => (any::<prop::sample::Index>(), odd_value()).prop_map(|(i, v)| Mutation::Replace(i, v)),
        1 => any::<prop::sample::Index>().prop_map(Mutation::Duplicate),
        4 => (any::<prop::sample::Index>(), any::<u64>()).prop_map(|(i, s)| Mutation::Similar(i, s)),
    ]
}

fn apply(account: &mut Value, mutation: &Mutation) {
    let mut all = Vec::new();
    pointers(account, String::new(), &mut all);
    if all.is_empty() {
        return;
    }
    let pick = |i: &prop::sample::Index| all[i.index(all.len())].clone();
    let split = |pointer: &str| {
        let (parent, last) = pointer.rsplit_once('/').expect("pointer has a slash");
        (parent.to_owned(), last.to_owned())
    };
    match mutation {
        Mutation::Remove(i) => {
            let (parent, last) = split(&pick(i));
            match account.pointer_mut(&parent) {
                Some(Value::Object(map)) => {
                    map.remove(&last);
                }
                Some(Value::Array(items)) => {
                    if let Ok(n) = last.parse::<usize>() {
                        items.remove(n);
                    }
                }
                _ => {}
            }
        }
        Mutation::Replace(i, value) => {
            if let Some(slot) = account.pointer_mut(&pick(i)) {
                *slot = value.clone();
            }
        }
        Mutation::Similar(i, seed) => {
            if let Some(slot) = account.pointer_mut(&pick(i))
                && let Some(value) = similar(slot, *seed)
            {
                *slot = value;
            }
        }
        Mutation::Duplicate(i) => {
            let (parent, last) = split(&pick(i));
            if let Some(Value::Array(items)) = account.pointer_mut(&parent)
                && let Ok(n) = last.parse::<usize>()
            {
                let copy = items[n].clone();
                items.push(copy);
            }
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    /// (b) Valid accounts with fields dropped, duplicated or replaced by odd values.
    #[test]
    fn mutated_accounts_never_panic(
        index in any::<prop::sample::Index>(),
        mutations in prop::collection::vec(mutation(), 1..5),
        dates in some_dates(),
    ) {
        let mut account = index.get(&ACCOUNT_VALUES).clone();
        for m in &mutations {
            apply(&mut account, m);
        }
        load_and_decide(account.to_string().into_bytes(), &dates);
    }
}

/// A plan's order-independent part and its errors as (account id, message), sorted.
type Comparable = (Value, Vec<(Option<String>, String)>);

/// The order-independent part of a plan: letters, suppressions and referrals as JSON, and
/// errors as (account, message) pairs, sorted (their `source` names a line, which moves).
fn plan_of_lines(lines: &[String]) -> Comparable {
    let records = lines.iter().enumerate().map(|(i, line)| {
        Ok(RawRecord {
            source: format!("accounts.jsonl:{}", i + 1),
            bytes: line.clone().into_bytes(),
        })
    });
    let ctx = context(date("2026-12-01"), date("2026-12-01"));
    let plan = plan_batch(records, &PriorNotices::new(), &ctx, |_| {});
    let json = serde_json::to_value(&plan).expect("plan serialises");
    let mut errors: Vec<(Option<String>, String)> = plan
        .errors
        .iter()
        .map(|e| (e.account_id.clone(), e.message.clone()))
        .collect();
    errors.sort();
    (
        json!({
            "letters": json["letters"],
            "suppressed": json["suppressed"],
            "referrals": json["referrals"],
            "referrals_held": json["referrals_held"],
            "treasury_updates": json["treasury_updates"],
            "accounts_planned": json["accounts_planned"],
        }),
        errors,
    )
}

static IN_ORDER: LazyLock<Comparable> = LazyLock::new(|| plan_of_lines(&ACCOUNT_LINES));

#[test]
fn the_order_independence_check_sees_a_real_plan() {
    let (plan, errors) = &*IN_ORDER;
    assert!(plan["letters"].as_array().expect("letters").len() > 60);
    assert!(!plan["referrals"].as_array().expect("referrals").is_empty());
    // The only errors are the letter errors of the missing-spouse fixture and the accounts
    // of the fixtures that are bad on purpose (`referrals[]` records, a tax type with no
    // label): one each.
    let accounts: std::collections::BTreeSet<&str> = errors
        .iter()
        .map(|(account, _)| account.as_deref().unwrap_or("?"))
        .collect();
    let on_purpose = |a: &str| a.starts_with("RB-") || a == "TT-BAD";
    assert_eq!(
        errors
            .iter()
            .filter(|(a, _)| !on_purpose(a.as_deref().unwrap_or("?")))
            .count(),
        2,
        "{errors:?}"
    );
    assert_eq!(
        accounts.iter().filter(|a| on_purpose(a)).count(),
        11,
        "{errors:?}"
    );
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 24, ..ProptestConfig::default() })]

    /// (c) Shuffling the accounts of a JSONL file does not change the plan.
    #[test]
    fn plan_does_not_depend_on_account_order(
        lines in Just(ACCOUNT_LINES.clone()).prop_shuffle(),
    ) {
        let shuffled = plan_of_lines(&lines);
        prop_assert_eq!(&shuffled, &*IN_ORDER);
    }
}
