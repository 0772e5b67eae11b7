//! `missive plan` on the sample accounts: the whole plan against a snapshot and against the
//! hand-computed oracle in `samples/EXPECTED.md`, plus the shape rules of interface.md
//! (keys always present, amounts as two-decimal strings, ordering, sorting) and the
//! `--mail-date` default.

mod common;

use std::collections::BTreeMap;
use std::sync::OnceLock;

use common::{
    Fixture, array, assert_fields, letter, letter_keys, missive, plan, plan_ok, referrals, strings,
    sup, suppressions,
};
use serde_json::{Value, json};

const SAMPLES: &str = "samples/accounts";
const AS_OF: &str = "2026-12-01";

/// The sample plan at as-of 2026-12-01 (mail date left to its default), computed once.
fn samples_plan() -> &'static Value {
    static PLAN: OnceLock<Value> = OnceLock::new();
    PLAN.get_or_init(|| plan_ok(SAMPLES, &["--as-of", AS_OF]))
}

#[test]
fn samples_plan_snapshot() {
    insta::assert_json_snapshot!("samples_plan", samples_plan());
}

#[test]
fn explicit_mail_date_gives_the_same_plan() {
    // 2026-12-01 is a Tuesday, so the default mail date is the as-of date itself.
    let explicit = plan_ok(SAMPLES, &["--as-of", AS_OF, "--mail-date", AS_OF]);
    assert_eq!(&explicit, samples_plan());
}

#[test]
fn jsonl_gives_the_same_plan_as_the_directory() {
    let jsonl = plan_ok("samples/accounts.jsonl", &["--as-of", AS_OF]);
    assert_eq!(&jsonl, samples_plan());
}

#[test]
fn jsonl_in_reverse_order_gives_the_same_plan() {
    let text = std::fs::read_to_string(common::root().join("samples/accounts.jsonl"))
        .expect("read samples/accounts.jsonl");
    let reversed: Vec<&str> = text.lines().rev().collect();
    let fixture = Fixture::empty();
    fixture.write("reversed.jsonl", reversed.join("\n") + "\n");
    let (code, plan) = fixture.plan("reversed.jsonl", &["--as-of", AS_OF]);
    assert_eq!(code, 0);
    assert_eq!(&plan, samples_plan());
}

/// One letter of EXPECTED.md: every field the oracle fixes.
#[allow(clippy::too_many_arguments)]
fn expected(
    key: &str,
    variant: Value,
    channel: &str,
    mail_class: Value,
    email_copy: bool,
    recipients: &[&str],
    deadline: Value,
    liability_ids: &[&str],
    amounts: Value,
) -> (String, Value) {
    let account_id = key.split('/').next().expect("key has an account");
    let kind = key.split('/').nth(1).expect("key has a kind");
    (
        key.to_owned(),
        json!({
            "key": key,
            "account_id": account_id,
            "kind": kind,
            "variant": variant,
            "channel": channel,
            "mail_class": mail_class,
            "email_copy": email_copy,
            "recipients": recipients,
            "letter_date": AS_OF,
            "deadline": deadline,
            "liability_ids": liability_ids,
            "amounts": amounts,
        }),
    )
}

/// The 31 letters of EXPECTED.md, in the order it gives.
fn expected_letters() -> Vec<(String, Value)> {
    let n = Value::Null;
    let cert = json!("certified");
    let first = json!("first_class");
    let dl = json!("2027-02-01");
    let ito = |key: &str, recipient: &str, ids: &[&str], balance: &str, payoff: &str| {
        expected(
            key,
            Value::Null,
            "print",
            json!("certified"),
            false,
            &[recipient],
            json!("2027-02-01"),
            ids,
            json!({"balance": balance, "payoff": payoff}),
        )
    };
    vec![
        ito(
            "CT-0001001/intent_to_offset/L1",
            "Keiko Ito",
            &["L1"],
            "2822.85",
            "2878.20",
        ),
        expected(
            "CT-0001002/intent_to_offset/L12+L3+L9",
            n.clone(),
            "print",
            cert.clone(),
            true,
            &["Marcus T. Bellamy"],
            dl.clone(),
            &["L12", "L3", "L9"],
            json!({"balance": "8813.60", "payoff": "8930.29"}),
        ),
        ito(
            "CT-0001003/intent_to_offset/L1",
            "Priya Raghunathan",
            &["L1"],
            "4043.00",
            "4100.40",
        ),
        ito(
            "CT-0001004/intent_to_offset/L1",
            "Gregory Papadopoulos",
            &["L1"],
            "2012.40",
            "2059.20",
        ),
        ito(
            "CT-0001005/intent_to_offset/L1",
            "Lorraine Dubois",
            &["L1"],
            "3406.00",
            "3510.00",
        ),
        ito(
            "CT-0001006/intent_to_offset/L1",
            "Dwayne Whitaker",
            &["L1"],
            "25.00",
            "25.58",
        ),
        expected(
            "CT-0001007/offset_notice/F2026-1",
            json!("federal"),
            "email",
            n.clone(),
            false,
            &["Daniel Kowalczyk", "Maria Santos-Kowalczyk"],
            n.clone(),
            &[],
            json!({"refund": "3218.00", "offset": "2150.00", "remaining_balance": "0.00"}),
        ),
        expected(
            "CT-0001007/refund/F2026-1",
            json!("excess_offset"),
            "email",
            n.clone(),
            false,
            &["Daniel Kowalczyk", "Maria Santos-Kowalczyk"],
            n.clone(),
            &[],
            json!({"refund": "275.38"}),
        ),
        expected(
            "CT-0001008/offset_notice/F2026-1",
            json!("federal"),
            "print",
            first.clone(),
            false,
            &["Latoya M. Jenkins"],
            n.clone(),
            &[],
            json!({"refund": "1412.00", "offset": "1412.00", "remaining_balance": "4346.00"}),
        ),
        expected(
            "CT-0001009/offset_notice/F2026-1",
            json!("federal"),
            "print",
            first.clone(),
            false,
            &["Tomasz Wiśniewski"],
            n.clone(),
            &[],
            json!({"refund": "1500.00", "offset": "1200.00", "remaining_balance": "0.00"}),
        ),
        expected(
            "CT-0001010/offset_notice/S2026-1",
            json!("state"),
            "email",
            n.clone(),
            false,
            &["Renée O\u{2019}Brien-Núñez"],
            n.clone(),
            &[],
            json!({"refund": "864.00", "offset": "612.50", "refund_paid": "251.50"}),
        ),
        expected(
            "CT-0001011/refund/LR1",
            json!("late_return"),
            "print",
            first.clone(),
            false,
            &["Hyun-woo Park"],
            n.clone(),
            &[],
            json!({"refund": "1743.00", "offsets_returned": "1325.00", "excess_refunded": "418.00"}),
        ),
        expected(
            "CT-0001012/refund/LR1",
            json!("late_return"),
            "email",
            n.clone(),
            false,
            &["Wendell Okafor"],
            n.clone(),
            &[],
            json!({"refund": "980.00", "offsets_returned": "980.00", "excess_refunded": "0.00"}),
        ),
        expected(
            "CT-0001013/review_outcome/R1",
            json!("upheld"),
            "print",
            first.clone(),
            false,
            &["Beatriz Albuquerque"],
            n.clone(),
            &["L1"],
            json!({"balance": "2689.50", "to_refer": "2689.50"}),
        ),
        expected(
            "CT-0001014/review_outcome/R1",
            json!("reduced"),
            "email",
            n.clone(),
            false,
            &["Siobhan Gallagher"],
            n.clone(),
            &["L1", "L2"],
            json!({"balance": "2450.00", "to_refer": "3390.95"}),
        ),
        ito(
            "CT-0001015/intent_to_offset/L2",
            "Yusuf Haddad",
            &["L2"],
            "1199.70",
            "1227.60",
        ),
        expected(
            "CT-0001015/review_outcome/R2",
            json!("reversed"),
            "print",
            first.clone(),
            false,
            &["Yusuf Haddad"],
            n.clone(),
            &["L1"],
            json!({"balance": "0.00", "to_refer": null}),
        ),
        ito(
            "CT-0001017/intent_to_offset/L2",
            "Robert Lavoie",
            &["L2"],
            "1193.40",
            "1216.80",
        ),
        ito(
            "CT-0001019/intent_to_offset/L2",
            "Alicia Ferreira",
            &["L2"],
            "844.95",
            "864.60",
        ),
        ito(
            "CT-0001022/intent_to_offset/L1+L2",
            "Jean-Baptiste Moreau",
            &["L1", "L2"],
            "5320.05",
            "5427.60",
        ),
        expected(
            "CT-0001023/offset_notice/S2026-1",
            json!("state"),
            "email",
            n.clone(),
            false,
            &["Ifeoma Adeyemi"],
            Value::Null,
            &[],
            json!({"refund": "1210.00", "offset": "1210.00", "refund_paid": "0.00"}),
        ),
        ito(
            "CT-0001024/intent_to_offset/L1",
            "Harold Feinstein",
            &["L1"],
            "1861.20",
            "1900.80",
        ),
        expected(
            "CT-0001027/review_outcome/R1",
            json!("reversed"),
            "email",
            n.clone(),
            false,
            &["Ingrid Halvorsen"],
            n.clone(),
            &["L1"],
            json!({"balance": "0.00", "to_refer": null}),
        ),
        expected(
            "CT-0001028/review_outcome/R1",
            json!("upheld"),
            "print",
            first.clone(),
            false,
            &["Miguel A. Torres"],
            n.clone(),
            &["L2"],
            json!({"balance": "1353.60", "to_refer": "3561.60"}),
        ),
        expected(
            "CT-0001029/review_outcome/R1",
            json!("reduced"),
            "email",
            n.clone(),
            false,
            &["Agnieszka Nowak"],
            n.clone(),
            &["L2"],
            json!({"balance": "900.00", "to_refer": "5109.60"}),
        ),
        // 31-34: Spanish speakers, planned exactly as the English samples they copy.
        ito(
            "CT-0001031/intent_to_offset/L1",
            "María Elena Rodríguez",
            &["L1"],
            "2822.85",
            "2878.20",
        ),
        expected(
            "CT-0001032/offset_notice/F2026-1",
            json!("federal"),
            "email",
            n.clone(),
            false,
            &["José Luis Hernández", "Ana Sofía Vega-Hernández"],
            n.clone(),
            &[],
            json!({"refund": "3218.00", "offset": "2150.00", "remaining_balance": "0.00"}),
        ),
        expected(
            "CT-0001032/refund/F2026-1",
            json!("excess_offset"),
            "email",
            n.clone(),
            false,
            &["José Luis Hernández", "Ana Sofía Vega-Hernández"],
            n.clone(),
            &[],
            json!({"refund": "275.38"}),
        ),
        expected(
            "CT-0001033/refund/LR1",
            json!("late_return"),
            "print",
            first.clone(),
            false,
            &["Guadalupe Treviño"],
            n.clone(),
            &[],
            json!({"refund": "1743.00", "offsets_returned": "1325.00", "excess_refunded": "418.00"}),
        ),
        ito(
            "CT-0001034/intent_to_offset/L2",
            "Rafael Ortiz Colón",
            &["L2"],
            "1199.70",
            "1227.60",
        ),
        expected(
            "CT-0001034/review_outcome/R2",
            json!("reversed"),
            "print",
            first,
            false,
            &["Rafael Ortiz Colón"],
            n,
            &["L1"],
            json!({"balance": "0.00", "to_refer": null}),
        ),
    ]
}

#[test]
fn samples_letters_match_expected_md() {
    let plan = samples_plan();
    let expected = expected_letters();
    let keys: Vec<&str> = expected.iter().map(|(k, _)| k.as_str()).collect();
    assert_eq!(letter_keys(plan), keys, "letters and their order");
    for (key, fields) in &expected {
        assert_fields(letter(plan, key), fields.clone());
    }
}

#[test]
fn samples_suppressions_match_expected_md() {
    let plan = samples_plan();
    let ito = "intent_to_offset";
    let required = [
        ("CT-0001002", vec![sup(ito, "too_old", &["L7"])]),
        ("CT-0001013", vec![sup(ito, "review_pending", &["L2"])]),
        ("CT-0001015", vec![sup(ito, "not_enforceable", &["L1"])]),
        ("CT-0001016", vec![sup(ito, "below_minimum", &["L1"])]),
        ("CT-0001017", vec![sup(ito, "not_enforceable", &["L1"])]),
        (
            "CT-0001018",
            vec![sup(ito, "bankruptcy_stay", &["L1", "L2"])],
        ),
        ("CT-0001020", vec![sup(ito, "undeliverable", &["L1"])]),
        ("CT-0001023", vec![sup(ito, "undeliverable", &["L1"])]),
        (
            "CT-0001024",
            vec![sup(ito, "not_income_tax", &["L2", "L3"])],
        ),
        ("CT-0001026", vec![sup(ito, "bankruptcy_stay", &["L1"])]),
        ("CT-0001027", vec![sup(ito, "not_enforceable", &["L1"])]),
        ("CT-0001030", vec![sup(ito, "review_pending", &["L1"])]),
        ("CT-0001034", vec![sup(ito, "not_enforceable", &["L1"])]),
    ];
    let mut accounts_with_required = Vec::new();
    for (account, want) in &required {
        assert_eq!(&suppressions(plan, account), want, "account {account}");
        accounts_with_required.push(*account);
    }
    // Nothing else, apart from the optional already_sent entries EXPECTED.md allows.
    let allowed_already_sent: BTreeMap<&str, &[&str]> = [
        ("CT-0001007", &["L1"][..]),
        ("CT-0001008", &["L1", "L2"][..]),
        ("CT-0001009", &["L1"][..]),
        ("CT-0001011", &["L1"][..]),
        ("CT-0001012", &["L1", "L2"][..]),
        ("CT-0001013", &["L1"][..]),
        ("CT-0001014", &["L1", "L2", "L3"][..]),
        ("CT-0001019", &["L1"][..]),
        ("CT-0001021", &["L1", "L2"][..]),
        ("CT-0001025", &["L1", "L2"][..]),
        ("CT-0001028", &["L1", "L2"][..]),
        ("CT-0001029", &["L1", "L2", "L3"][..]),
        ("CT-0001032", &["L1"][..]),
        ("CT-0001033", &["L1"][..]),
    ]
    .into_iter()
    .collect();
    for s in array(&plan["suppressed"]) {
        let account = s["account_id"].as_str().expect("account_id");
        if s["reason"] == "already_sent" {
            let allowed = allowed_already_sent
                .get(account)
                .unwrap_or_else(|| panic!("unexpected already_sent entry {s}"));
            for id in strings(&s["liability_ids"]) {
                assert!(allowed.contains(&id.as_str()), "unexpected {s}");
            }
        } else {
            assert!(
                accounts_with_required.contains(&account),
                "unexpected suppression {s}"
            );
        }
    }
}

#[test]
fn samples_referrals_match_expected_md() {
    let plan = samples_plan();
    let want = [
        ("CT-0001013", &["L1"][..], "2689.50", "L1", "2026-10-16"),
        (
            "CT-0001014",
            &["L1", "L2", "L3"][..],
            "3390.95",
            "L1+L2+L3",
            "2026-11-13",
        ),
        (
            "CT-0001021",
            &["L1", "L2"][..],
            "4020.50",
            "L1+L2",
            "2026-09-08",
        ),
        ("CT-0001028", &["L2"][..], "1353.60", "L1+L2", "2026-07-06"),
    ];
    assert_eq!(
        array(&plan["referrals"]).len(),
        want.len(),
        "{:#}",
        plan["referrals"]
    );
    for (account, ids, amount, subject, deadline) in want {
        let found = referrals(plan, account);
        assert_eq!(found.len(), 1, "referrals of {account}");
        assert_eq!(
            found[0],
            &json!({
                "account_id": account,
                "liability_ids": ids,
                "amount": amount,
                "notice_key": format!("{account}/intent_to_offset/{subject}"),
                "deadline_passed": deadline,
            })
        );
    }
}

#[test]
fn samples_held_referrals_match_expected_md() {
    let plan = samples_plan();
    let found: Vec<(String, String, Vec<String>)> = array(&plan["referrals_held"])
        .iter()
        .map(|h| {
            assert!(!h["why"].as_str().expect("why").is_empty());
            (
                h["notice_key"].as_str().expect("notice_key").to_owned(),
                h["reason"].as_str().expect("reason").to_owned(),
                strings(&h["liability_ids"]),
            )
        })
        .collect();
    let want = [
        (
            "CT-0001008/intent_to_offset/L1+L2",
            "offset_not_posted",
            vec!["L1", "L2"],
        ),
        (
            "CT-0001009/intent_to_offset/L1",
            "offset_not_posted",
            vec!["L1"],
        ),
        (
            "CT-0001030/intent_to_offset/L1",
            "nothing_referable",
            vec!["L1"],
        ),
    ];
    let want: Vec<(String, String, Vec<String>)> = want
        .into_iter()
        .map(|(k, r, ids)| {
            (
                k.to_owned(),
                r.to_owned(),
                ids.into_iter().map(str::to_owned).collect(),
            )
        })
        .collect();
    assert_eq!(found, want);
}

#[test]
fn samples_treasury_updates_match_expected_md() {
    let plan = samples_plan();
    let found: Vec<Value> = array(&plan["treasury_updates"])
        .iter()
        .map(|u| {
            assert!(!u["why"].as_str().expect("why").is_empty());
            let mut u = u.clone();
            u.as_object_mut().expect("object").remove("why");
            u
        })
        .collect();
    let update = |account: &str,
                  subject: &str,
                  action: &str,
                  reason: &str,
                  before: &str,
                  after: &str,
                  ids: &[&str]| {
        json!({
            "account_id": account,
            "notice_key": format!("{account}/intent_to_offset/{subject}"),
            "action": action, "reason": reason, "amount_before": before,
            "amount_after": after, "liability_ids": ids,
        })
    };
    assert_eq!(
        found,
        [
            update(
                "CT-0001025",
                "L1+L2",
                "decrease",
                "reduced",
                "4127.40",
                "3568.60",
                &["L1", "L2"]
            ),
            update(
                "CT-0001026",
                "L1",
                "delete",
                "bankruptcy_stay",
                "2964.75",
                "0.00",
                &["L1"]
            ),
            update(
                "CT-0001027",
                "L1",
                "delete",
                "reversed",
                "1547.70",
                "0.00",
                &["L1"]
            ),
            update(
                "CT-0001029",
                "L1+L2+L3",
                "decrease",
                "reduced",
                "6211.35",
                "5109.60",
                &["L1", "L2", "L3"]
            ),
        ]
    );
}

#[test]
fn samples_plan_has_no_errors_and_the_dates_asked_for() {
    let plan = samples_plan();
    assert_eq!(plan["errors"], json!([]));
    assert_eq!(plan["as_of"], AS_OF);
    assert_eq!(plan["mail_date"], AS_OF);
}

#[test]
fn table_format_exits_0_and_shows_totals() {
    let run = missive(&["plan", "--accounts", SAMPLES, "--as-of", AS_OF]);
    run.expect_code(0);
    assert_eq!(run.stderr, "", "no errors on stderr");
    let out = &run.stdout;
    assert!(out.contains("TOTALS"), "{out}");
    for total in [
        "intent_to_offset 13",
        "offset_notice 6",
        "refund 5",
        "review_outcome 7",
        "letters 31",
        "referrals 4 ($11,454.55)",
        "referrals held 3",
        "treasury updates 4",
        "held total: 3 (nothing_referable 1, offset_not_posted 2)",
        "updates total: decrease 2 ($1,660.55), delete 2 ($4,512.45)",
        "errors 0",
    ] {
        assert!(out.contains(total), "totals lack `{total}`:\n{out}");
    }
    // Every letter key appears in the table.
    for key in letter_keys(samples_plan()) {
        assert!(out.contains(&key), "table lacks {key}");
    }
}

// ---------------------------------------------------------------------------------------
// Shape rules of interface.md, checked on every plan the test fixtures produce.

/// The sample plan, the mixed (good + broken) directory, and every rule fixture folder.
fn all_plans() -> &'static Vec<(String, Value)> {
    static PLANS: OnceLock<Vec<(String, Value)>> = OnceLock::new();
    PLANS.get_or_init(|| {
        let mut sources = vec![SAMPLES.to_owned(), "samples/mixed".to_owned()];
        let mut rules: Vec<String> = std::fs::read_dir(common::root().join("tests/fixtures"))
            .expect("tests/fixtures")
            .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
            // Only rule folders (other tests keep non-account fixtures here too).
            .filter(|r| {
                common::root()
                    .join("tests/fixtures")
                    .join(r)
                    .join("accounts")
                    .is_dir()
            })
            .collect();
        rules.sort();
        sources.extend(rules.iter().map(|r| common::fixture(r)));
        sources
            .into_iter()
            .map(|src| {
                let (code, json) = plan(&src, &["--as-of", AS_OF]);
                assert!(code == 0 || code == 1, "{src}: exit {code}");
                (src, json)
            })
            .collect()
    })
}

fn assert_keys(what: &str, object: &Value, keys: &[&str]) {
    let map = object
        .as_object()
        .unwrap_or_else(|| panic!("{what}: not an object: {object}"));
    for key in keys {
        assert!(
            map.contains_key(*key),
            "{what}: key `{key}` missing in {object:#}"
        );
    }
}

#[test]
fn every_interface_key_is_present_in_every_object() {
    let mut seen_errors = 0;
    for (src, plan) in all_plans() {
        assert_keys(
            src,
            plan,
            &[
                "as_of",
                "mail_date",
                "letters",
                "suppressed",
                "referrals",
                "referrals_held",
                "treasury_updates",
                "errors",
            ],
        );
        for h in array(&plan["referrals_held"]) {
            assert_keys(
                src,
                h,
                &["account_id", "liability_ids", "notice_key", "reason", "why"],
            );
        }
        for u in array(&plan["treasury_updates"]) {
            assert_keys(src, u, common::TREASURY_UPDATE_KEYS);
        }
        for l in array(&plan["letters"]) {
            assert_keys(
                src,
                l,
                &[
                    "key",
                    "account_id",
                    "kind",
                    "variant",
                    "channel",
                    "mail_class",
                    "email_copy",
                    "recipients",
                    "letter_date",
                    "deadline",
                    "liability_ids",
                    "amounts",
                    "why",
                ],
            );
            let is_ito = l["kind"] == "intent_to_offset";
            assert_eq!(l["variant"].is_null(), is_ito, "variant: {l:#}");
            assert_eq!(l["deadline"].is_null(), !is_ito, "deadline: {l:#}");
            assert_eq!(
                l["mail_class"].is_null(),
                l["channel"] == "email",
                "mail_class: {l:#}"
            );
            assert!(l["email_copy"].is_boolean(), "email_copy: {l:#}");
            if !is_ito {
                assert_eq!(l["email_copy"], false, "email_copy: {l:#}");
            }
            assert!(!strings(&l["recipients"]).is_empty(), "recipients: {l:#}");
            assert_eq!(l["letter_date"], plan["mail_date"], "letter_date: {l:#}");
            assert!(!l["why"].as_str().expect("why").is_empty());
        }
        for s in array(&plan["suppressed"]) {
            assert_keys(
                src,
                s,
                &["account_id", "kind", "reason", "liability_ids", "why"],
            );
        }
        for r in array(&plan["referrals"]) {
            assert_keys(
                src,
                r,
                &[
                    "account_id",
                    "liability_ids",
                    "amount",
                    "notice_key",
                    "deadline_passed",
                ],
            );
        }
        for e in array(&plan["errors"]) {
            assert_keys(src, e, &["source", "account_id", "message"]);
            seen_errors += 1;
        }
    }
    assert!(seen_errors > 0, "some plan must have errors to check");
}

/// `1234.50`: digits, a point, exactly two digits; no sign, `$` or separators.
fn is_plain_amount(text: &str) -> bool {
    let Some((whole, cents)) = text.split_once('.') else {
        return false;
    };
    !whole.is_empty()
        && whole.bytes().all(|b| b.is_ascii_digit())
        && cents.len() == 2
        && cents.bytes().all(|b| b.is_ascii_digit())
}

#[test]
fn amounts_are_strings_with_exactly_two_decimals() {
    let amount_keys: BTreeMap<(&str, &str), &[&str]> = [
        (("intent_to_offset", ""), &["balance", "payoff"][..]),
        (
            ("offset_notice", "federal"),
            &["refund", "offset", "remaining_balance"][..],
        ),
        (
            ("offset_notice", "state"),
            &["refund", "offset", "refund_paid"][..],
        ),
        (("refund", "excess_offset"), &["refund"][..]),
        (
            ("refund", "late_return"),
            &["refund", "offsets_returned", "excess_refunded"][..],
        ),
        (("review_outcome", "upheld"), &["balance", "to_refer"][..]),
        (("review_outcome", "reduced"), &["balance", "to_refer"][..]),
        (("review_outcome", "reversed"), &["balance", "to_refer"][..]),
    ]
    .into_iter()
    .collect();
    let mut checked = 0;
    for (src, plan) in all_plans() {
        for l in array(&plan["letters"]) {
            let kind = l["kind"].as_str().expect("kind");
            let variant = l["variant"].as_str().unwrap_or("");
            let want = amount_keys
                .get(&(kind, variant))
                .unwrap_or_else(|| panic!("{src}: unknown kind/variant in {l:#}"));
            let amounts = l["amounts"].as_object().expect("amounts is an object");
            let mut have: Vec<&str> = amounts.keys().map(String::as_str).collect();
            have.sort_unstable();
            let mut want = want.to_vec();
            want.sort_unstable();
            assert_eq!(have, want, "{src}: amount keys of {}", l["key"]);
            for (name, value) in amounts {
                // `to_refer` is null where nothing is referred (always on reversed letters).
                if name == "to_refer" && (value.is_null() || variant == "reversed") {
                    assert!(value.is_null(), "{src}: reversed to_refer in {l:#}");
                    continue;
                }
                let text = value
                    .as_str()
                    .unwrap_or_else(|| panic!("{src}: {name} is not a string in {l:#}"));
                assert!(is_plain_amount(text), "{src}: {name} = {text:?}");
                checked += 1;
            }
        }
        for r in array(&plan["referrals"]) {
            let text = r["amount"].as_str().expect("referral amount is a string");
            assert!(is_plain_amount(text), "{src}: referral amount {text:?}");
            checked += 1;
        }
        for u in array(&plan["treasury_updates"]) {
            for name in ["amount_before", "amount_after"] {
                let text = u[name].as_str().expect("update amount is a string");
                assert!(is_plain_amount(text), "{src}: {name} {text:?}");
                checked += 1;
            }
            if u["action"] == "delete" {
                assert_eq!(u["amount_after"], "0.00", "{src}: {u}");
            }
        }
    }
    assert!(checked > 100);
}

fn kind_rank(kind: &Value) -> usize {
    [
        "intent_to_offset",
        "offset_notice",
        "refund",
        "review_outcome",
    ]
    .iter()
    .position(|k| kind == k)
    .unwrap_or_else(|| panic!("unknown kind {kind}"))
}

#[test]
fn letters_are_ordered_by_account_kind_and_key() {
    for (src, plan) in all_plans() {
        let order: Vec<(String, usize, String)> = array(&plan["letters"])
            .iter()
            .map(|l| {
                (
                    l["account_id"].as_str().expect("account").to_owned(),
                    kind_rank(&l["kind"]),
                    l["key"].as_str().expect("key").to_owned(),
                )
            })
            .collect();
        let mut sorted = order.clone();
        sorted.sort();
        assert_eq!(order, sorted, "{src}: letter order");
    }
}

#[test]
fn letter_keys_follow_account_kind_subject() {
    for (src, plan) in all_plans() {
        for l in array(&plan["letters"]) {
            let key = l["key"].as_str().expect("key");
            let parts: Vec<&str> = key.split('/').collect();
            assert_eq!(parts.len(), 3, "{src}: {key}");
            assert_eq!(l["account_id"], parts[0], "{src}: {key}");
            assert_eq!(l["kind"], parts[1], "{src}: {key}");
            if l["kind"] == "intent_to_offset" {
                assert_eq!(
                    strings(&l["liability_ids"]).join("+"),
                    parts[2],
                    "{src}: {key}"
                );
            }
        }
    }
}

#[test]
fn every_liability_ids_list_is_sorted_in_plain_string_order() {
    let mut lists = 0;
    for (src, plan) in all_plans() {
        let objects = [
            "letters",
            "suppressed",
            "referrals",
            "referrals_held",
            "treasury_updates",
        ]
        .into_iter()
        .flat_map(|list| array(&plan[list]).iter())
        .chain(plan["referrals_held"].as_array().into_iter().flatten());
        for object in objects {
            let ids = strings(&object["liability_ids"]);
            let mut sorted = ids.clone();
            sorted.sort();
            assert_eq!(ids, sorted, "{src}: {object:#}");
            lists += 1;
        }
    }
    assert!(lists > 50);
}

// ---------------------------------------------------------------------------------------
// --mail-date defaults to the first business day on or after the as-of date.

fn default_mail_date(as_of: &str) -> Value {
    let plan = plan_ok(SAMPLES, &["--as-of", as_of]);
    // Every letter is dated the mail date.
    for l in array(&plan["letters"]) {
        assert_eq!(l["letter_date"], plan["mail_date"], "{l:#}");
    }
    plan
}

#[test]
fn mail_date_defaults_to_the_as_of_date_on_a_business_day() {
    assert_eq!(default_mail_date("2026-12-01")["mail_date"], "2026-12-01");
}

#[test]
fn mail_date_defaults_past_a_weekend() {
    // Saturday 2026-12-05 → Monday 2026-12-07.
    let plan = default_mail_date("2026-12-05");
    assert_eq!(plan["as_of"], "2026-12-05");
    assert_eq!(plan["mail_date"], "2026-12-07");
}

#[test]
fn mail_date_defaults_past_thanksgiving() {
    // Thanksgiving, Thursday 2026-11-26 → Friday 2026-11-27; the deadline counts from
    // there: day 60 is Tuesday 2027-01-26.
    let plan = default_mail_date("2026-11-26");
    assert_eq!(plan["mail_date"], "2026-11-27");
    let ito = letter(&plan, "CT-0001001/intent_to_offset/L1");
    assert_fields(
        ito,
        json!({"letter_date": "2026-11-27", "deadline": "2027-01-26"}),
    );
}

#[test]
fn mail_date_defaults_past_christmas_and_the_weekend() {
    // Christmas, Friday 2026-12-25 → Monday 2026-12-28.
    assert_eq!(default_mail_date("2026-12-25")["mail_date"], "2026-12-28");
    // New Year's Day, Friday 2027-01-01 → Monday 2027-01-04.
    assert_eq!(default_mail_date("2027-01-01")["mail_date"], "2027-01-04");
}
