//! Meaning checks on a parsed account, and the conversion into [`Account`].
//!
//! Parsing (serde) already refused unknown fields, non-string amounts and malformed dates.
//! Here we check what the format cannot say: non-negative amounts, ZIP format, unique ids
//! that are safe inside a letter key, references that resolve, dates in order, and records
//! whose shape matches their kind. Every problem is collected with its field path, so one
//! report lists everything wrong with a file.

use std::collections::HashSet;

use crate::account::{
    Account, Bankruptcy, LateReturn, Liability, Notice, NoticeSubject, Offset, OffsetSource,
    PaymentPlan, PostalAddress, ReceivingAgency, Review, ReviewDecision, Taxpayer, Zip,
};
use crate::letter::LetterKind;
use crate::money::Money;

use super::Problem;
use super::input::{
    AccountInput, AddressInput, LateReturnInput, LiabilityInput, NoticeInput, OffsetInput,
    OutcomeInput, ReviewInput, SourceInput,
};
use super::printable;

/// Longest id accepted (ids end up in keys and file names).
const MAX_ID_LEN: usize = 64;
/// Longest free-text field accepted (names, address lines).
const MAX_TEXT_LEN: usize = 200;
/// Bankruptcy code chapters that exist.
const CHAPTERS: [u8; 6] = [7, 9, 11, 12, 13, 15];

/// Collects problems with their field paths while converting.
#[derive(Default)]
pub(super) struct Checker {
    pub(super) problems: Vec<Problem>,
}

impl Checker {
    pub(super) fn fail(&mut self, field: impl Into<String>, message: impl Into<String>) {
        self.problems.push(Problem {
            field: field.into(),
            message: message.into(),
        });
    }

    /// An id: non-empty, short, and free of `/`, `+`, whitespace and control characters.
    fn id(&mut self, field: &str, id: &str) {
        if id.is_empty() {
            self.fail(field, "must not be empty");
        } else if id.chars().count() > MAX_ID_LEN {
            self.fail(field, format!("is longer than {MAX_ID_LEN} characters"));
        } else if let Some(c) = id
            .chars()
            .find(|c| *c == '/' || *c == '+' || c.is_whitespace() || c.is_control())
        {
            self.fail(
                field,
                format!(
                    "`{id}` contains {c:?}; ids may not contain `/`, `+`, spaces or control characters (they are parts of letter keys)"
                ),
            );
        } else {
            self.printable(field, id);
        }
    }

    /// Free text printed on a letter: non-blank, bounded, one line.
    fn text(&mut self, field: &str, text: &str) {
        if text.trim().is_empty() {
            self.fail(field, "must not be empty");
        } else if text.chars().count() > MAX_TEXT_LEN {
            self.fail(field, format!("is longer than {MAX_TEXT_LEN} characters"));
        } else {
            self.printable(field, text);
        }
    }

    /// Text printed on a letter must print as written (see [`printable`]).
    fn printable(&mut self, field: &str, text: &str) {
        if let Some((c, why)) = printable::first_unprintable(text) {
            let at = text.chars().take_while(|x| *x != c).count() + 1;
            self.fail(
                field,
                format!(
                    "contains {} at character {at}: {}",
                    printable::code_point(c),
                    why.describe()
                ),
            );
        }
    }

    /// Optional free text: absent, `null` and `""` all mean "none" (a generator writing `""`
    /// for "no apartment" is common); anything else must be valid text.
    fn optional_text(&mut self, field: &str, text: Option<&str>) {
        if let Some(text) = text.filter(|t| !t.is_empty()) {
            self.text(field, text);
        }
    }

    /// An amount that must not be negative.
    fn non_negative(&mut self, field: &str, amount: Money) {
        if amount.is_negative() {
            self.fail(
                field,
                format!("is negative ({amount}); amounts must be zero or more"),
            );
        }
    }

    /// Ids must be unique within `seen`.
    fn unique<'a>(&mut self, seen: &mut HashSet<&'a str>, field: &str, id: &'a str) {
        if !seen.insert(id) {
            self.fail(field, format!("duplicate id `{id}`"));
        }
    }

    fn address(&mut self, field: &str, input: AddressInput) -> Option<PostalAddress> {
        self.text(&format!("{field}.line1"), &input.line1);
        self.optional_text(&format!("{field}.line2"), input.line2.as_deref());
        self.text(&format!("{field}.city"), &input.city);
        if !(input.state.len() == 2 && input.state.bytes().all(|b| b.is_ascii_uppercase())) {
            self.fail(
                format!("{field}.state"),
                format!("`{}` is not a two-letter state code like `CT`", input.state),
            );
        }
        self.optional_text(&format!("{field}.country"), input.country.as_deref());
        let zip = Zip::parse(&input.zip);
        if zip.is_none() {
            self.fail(
                format!("{field}.zip"),
                format!(
                    "`{}` is not a ZIP code: write 5 digits or ZIP+4 (`06103` or `06103-1234`)",
                    input.zip
                ),
            );
        }
        Some(PostalAddress {
            line1: input.line1,
            line2: input.line2.filter(|l| !l.trim().is_empty()),
            city: input.city,
            state: input.state,
            zip: zip?,
            country: input
                .country
                .filter(|c| !c.trim().is_empty())
                .unwrap_or_else(|| "US".to_owned()),
        })
    }
}

/// Checks a parsed account and converts it, or returns every problem found.
pub(super) fn validate(input: AccountInput) -> Result<Account, Vec<Problem>> {
    let mut check = Checker::default();
    check.id("account_id", &input.account_id);

    let taxpayer = input.taxpayer;
    check.text("taxpayer.name", &taxpayer.name);
    check.optional_text("taxpayer.spouse_name", taxpayer.spouse_name.as_deref());
    if !(taxpayer.tin_last4.len() == 4 && taxpayer.tin_last4.bytes().all(|b| b.is_ascii_digit())) {
        check.fail(
            "taxpayer.tin_last4",
            "must be exactly the last four digits of the taxpayer id",
        );
    }
    let address = input
        .address
        .and_then(|address| check.address("address", address));
    if let Some(language) = &input.language
        && !(2..=8).contains(&language.len())
    {
        check.fail(
            "language",
            format!("`{language}` is not a language tag like `en`"),
        );
    }

    let liabilities = liabilities(&mut check, input.liabilities.unwrap_or_default());
    if !liabilities.is_empty() && input.balance_as_of.is_none() {
        check.fail(
            "balance_as_of",
            "is required when the account has liabilities (payoff interest starts there)",
        );
    }
    let liability_ids: HashSet<&str> = liabilities.iter().map(|l| l.id.as_str()).collect();

    let payment_plan = input.payment_plan.map(|plan| {
        check.non_negative("payment_plan.monthly_amount", plan.monthly_amount);
        PaymentPlan {
            monthly_amount: plan.monthly_amount,
            started_on: plan.started_on.0,
        }
    });

    let bankruptcy = input.bankruptcy.map(|b| {
        check.text("bankruptcy.case_number", &b.case_number);
        check.text("bankruptcy.court", &b.court);
        if !CHAPTERS.contains(&b.chapter) {
            check.fail(
                "bankruptcy.chapter",
                format!(
                    "{} is not a bankruptcy chapter (7, 9, 11, 12, 13 or 15)",
                    b.chapter
                ),
            );
        }
        if let Some(end) = b.stay_ended_on
            && end.0 < b.filed_on.0
        {
            check.fail("bankruptcy.stay_ended_on", "is before `filed_on`");
        }
        Bankruptcy {
            case_number: b.case_number,
            court: b.court,
            chapter: b.chapter,
            filed_on: b.filed_on.0,
            stay_ended_on: b.stay_ended_on.map(|d| d.0),
        }
    });

    // Ids a notice may name, taken from the input so that a record with other problems
    // does not also produce a misleading "no such id" for the notices naming it.
    let offset_ids: HashSet<String> = input
        .offsets
        .iter()
        .flatten()
        .map(|o| o.id.clone())
        .collect();
    let review_ids: HashSet<String> = input
        .reviews
        .iter()
        .flatten()
        .map(|r| r.id.clone())
        .collect();
    let late_return_ids: HashSet<String> = input
        .late_returns
        .iter()
        .flatten()
        .map(|l| l.id.clone())
        .collect();

    let reviews = reviews(
        &mut check,
        input.reviews.unwrap_or_default(),
        &liability_ids,
    );
    let offsets = offsets(&mut check, input.offsets.unwrap_or_default());
    let late_returns = late_returns(&mut check, input.late_returns.unwrap_or_default());

    // Offsets and late returns share the `refund` key space, so their ids must not clash.
    for (i, late) in late_returns.iter().enumerate() {
        if offset_ids.contains(&late.id) {
            check.fail(
                format!("late_returns[{i}].id"),
                format!(
                    "`{}` is also an offset id; refund letters would share a key",
                    late.id
                ),
            );
        }
    }

    let known = Known {
        liabilities: &liability_ids,
        offsets: &offset_ids,
        reviews: &review_ids,
        late_returns: &late_return_ids,
    };
    let notices: Vec<Notice> = input
        .notices
        .unwrap_or_default()
        .into_iter()
        .enumerate()
        .filter_map(|(i, notice)| self::notice(&mut check, i, notice, &known))
        .collect();

    let referrals = super::referrals::referrals(
        &mut check,
        &input.account_id,
        input.referrals.unwrap_or_default(),
        &notices,
    );

    if !check.problems.is_empty() {
        return Err(check.problems);
    }
    Ok(Account {
        account_id: input.account_id,
        taxpayer: Taxpayer {
            name: taxpayer.name,
            spouse_name: taxpayer.spouse_name.filter(|s| !s.trim().is_empty()),
            tin_last4: taxpayer.tin_last4,
        },
        address,
        email: input.email,
        electronic_delivery: input.electronic_delivery.unwrap_or(false),
        language: input.language.unwrap_or_else(|| "en".to_owned()),
        balance_as_of: input.balance_as_of.map(|d| d.0),
        liabilities,
        payment_plan,
        bankruptcy,
        notices,
        reviews,
        offsets,
        late_returns,
        referrals,
    })
}

fn liabilities(check: &mut Checker, inputs: Vec<LiabilityInput>) -> Vec<Liability> {
    let mut out: Vec<Liability> = Vec::with_capacity(inputs.len());
    for (i, l) in inputs.into_iter().enumerate() {
        let at = |field: &str| format!("liabilities[{i}].{field}");
        check.id(&at("id"), &l.id);
        if out.iter().any(|seen| seen.id == l.id) {
            check.fail(at("id"), format!("duplicate id `{}`", l.id));
        }
        check.text(&at("tax_type"), &l.tax_type);
        check.text(&at("period"), &l.period);
        check.non_negative(&at("tax"), l.tax);
        check.non_negative(&at("penalty"), l.penalty);
        check.non_negative(&at("interest"), l.interest);
        out.push(Liability {
            id: l.id,
            tax_type: l.tax_type,
            period: l.period,
            due_date: l.due_date.0,
            tax: l.tax,
            penalty: l.penalty,
            interest: l.interest,
            enforceable: l.enforceable,
            judgment: l.judgment.unwrap_or(false),
        });
    }
    out
}

/// Checks a list of liability ids: non-empty, each known, none repeated; returns them sorted.
fn liability_refs(
    check: &mut Checker,
    field: &str,
    ids: Vec<String>,
    known: &HashSet<&str>,
) -> Vec<String> {
    if ids.is_empty() {
        check.fail(field, "must name at least one liability");
    }
    let mut seen = HashSet::new();
    for (j, id) in ids.iter().enumerate() {
        if !known.contains(id.as_str()) {
            check.fail(
                format!("{field}[{j}]"),
                format!("no liability with id `{id}` in this account"),
            );
        }
        if !seen.insert(id.as_str()) {
            check.fail(format!("{field}[{j}]"), format!("`{id}` is listed twice"));
        }
    }
    let mut ids = ids;
    ids.sort_unstable();
    ids
}

fn reviews(check: &mut Checker, inputs: Vec<ReviewInput>, known: &HashSet<&str>) -> Vec<Review> {
    let mut seen = HashSet::new();
    let mut out = Vec::with_capacity(inputs.len());
    for (i, r) in inputs.iter().enumerate() {
        let at = |field: &str| format!("reviews[{i}].{field}");
        check.id(&at("id"), &r.id);
        check.unique(&mut seen, &at("id"), &r.id);
        let decided_on = r.decided_on.map(|d| d.0);
        if let Some(decided_on) = decided_on
            && decided_on < r.requested_on.0
        {
            check.fail(at("decided_on"), "is before `requested_on`");
        }
        if r.outcome != OutcomeInput::Reduced && r.reduced_balance.is_some() {
            check.fail(
                at("reduced_balance"),
                "is only allowed when `outcome` is `reduced`",
            );
        }
        let decision = match (r.outcome, decided_on) {
            (OutcomeInput::Pending, None) => Some(ReviewDecision::Pending),
            (OutcomeInput::Pending, Some(_)) => {
                check.fail(at("decided_on"), "a pending review has no decision date");
                None
            }
            (_, None) => {
                check.fail(at("decided_on"), "is required once a review is decided");
                None
            }
            (OutcomeInput::Upheld, Some(decided_on)) => Some(ReviewDecision::Upheld { decided_on }),
            (OutcomeInput::Reversed, Some(decided_on)) => {
                Some(ReviewDecision::Reversed { decided_on })
            }
            (OutcomeInput::Reduced, Some(decided_on)) => match r.reduced_balance {
                Some(reduced_balance) => {
                    check.non_negative(&at("reduced_balance"), reduced_balance);
                    Some(ReviewDecision::Reduced {
                        decided_on,
                        reduced_balance,
                    })
                }
                None => {
                    check.fail(
                        at("reduced_balance"),
                        "is required when `outcome` is `reduced`",
                    );
                    None
                }
            },
        };
        let liability_ids =
            liability_refs(check, &at("liability_ids"), r.liability_ids.clone(), known);
        if let Some(decision) = decision {
            out.push(Review {
                id: r.id.clone(),
                liability_ids,
                requested_on: r.requested_on.0,
                decision,
            });
        }
    }
    out
}

fn offsets(check: &mut Checker, inputs: Vec<OffsetInput>) -> Vec<Offset> {
    let mut out: Vec<Offset> = Vec::with_capacity(inputs.len());
    for (i, o) in inputs.into_iter().enumerate() {
        let at = |field: &str| format!("offsets[{i}].{field}");
        check.id(&at("id"), &o.id);
        if out.iter().any(|seen| seen.id == o.id) {
            check.fail(at("id"), format!("duplicate id `{}`", o.id));
        }
        check.text(&at("tax_year"), &o.tax_year);
        check.non_negative(&at("refund_amount"), o.refund_amount);
        check.non_negative(&at("offset_amount"), o.offset_amount);
        if o.offset_amount > o.refund_amount {
            check.fail(
                at("offset_amount"),
                format!(
                    "{} is more than the refund of {}",
                    o.offset_amount, o.refund_amount
                ),
            );
        }
        if let Some(posted_on) = o.posted_on
            && posted_on.0 < o.offset_on.0
        {
            check.fail(at("posted_on"), "is before `offset_on`");
        }
        let source = match o.source {
            SourceInput::Federal => {
                if o.agency.is_some() {
                    check.fail(at("agency"), "is only for `state` offsets");
                }
                match o.balance_before {
                    Some(balance_before) => {
                        check.non_negative(&at("balance_before"), balance_before);
                        Some(OffsetSource::Federal { balance_before })
                    }
                    None => {
                        check.fail(at("balance_before"), "is required for a `federal` offset");
                        None
                    }
                }
            }
            SourceInput::State => {
                if o.balance_before.is_some() {
                    check.fail(at("balance_before"), "is only for `federal` offsets");
                }
                match o.agency {
                    Some(agency) => {
                        check.text(&at("agency.name"), &agency.name);
                        check.text(&at("agency.phone"), &agency.phone);
                        check
                            .address(&at("agency.address"), agency.address)
                            .map(|address| OffsetSource::State {
                                agency: ReceivingAgency {
                                    name: agency.name,
                                    address,
                                    phone: agency.phone,
                                },
                            })
                    }
                    None => {
                        check.fail(
                            at("agency"),
                            "is required for a `state` offset (name, address, phone)",
                        );
                        None
                    }
                }
            }
        };
        if let Some(source) = source {
            out.push(Offset {
                id: o.id,
                tax_year: o.tax_year,
                offset_on: o.offset_on.0,
                refund_amount: o.refund_amount,
                offset_amount: o.offset_amount,
                posted_on: o.posted_on.map(|d| d.0),
                joint_return: o.joint_return.unwrap_or(false),
                source,
            });
        }
    }
    out
}

fn late_returns(check: &mut Checker, inputs: Vec<LateReturnInput>) -> Vec<LateReturn> {
    let mut out: Vec<LateReturn> = Vec::with_capacity(inputs.len());
    for (i, l) in inputs.into_iter().enumerate() {
        let at = |field: &str| format!("late_returns[{i}].{field}");
        check.id(&at("id"), &l.id);
        if out.iter().any(|seen| seen.id == l.id) {
            check.fail(at("id"), format!("duplicate id `{}`", l.id));
        }
        check.text(&at("period"), &l.period);
        check.non_negative(&at("tax_due"), l.tax_due);
        check.non_negative(&at("offsets_applied"), l.offsets_applied);
        check.non_negative(&at("excess_payments"), l.excess_payments);
        if let Some(extended) = l.extended_due_date
            && extended.0 < l.due_date.0
        {
            check.fail(at("extended_due_date"), "is before `due_date`");
        }
        out.push(LateReturn {
            id: l.id,
            period: l.period,
            filed_on: l.filed_on.0,
            due_date: l.due_date.0,
            extended_due_date: l.extended_due_date.map(|d| d.0),
            tax_due: l.tax_due,
            offsets_applied: l.offsets_applied,
            excess_payments: l.excess_payments,
        });
    }
    out
}

/// The ids a notice may refer to.
struct Known<'a> {
    liabilities: &'a HashSet<&'a str>,
    offsets: &'a HashSet<String>,
    reviews: &'a HashSet<String>,
    late_returns: &'a HashSet<String>,
}

/// Checks one earlier notice: its subject must fit its kind and resolve.
fn notice(check: &mut Checker, i: usize, n: NoticeInput, known: &Known<'_>) -> Option<Notice> {
    let at = |field: &str| format!("notices[{i}].{field}");
    let given: Vec<&str> = [
        ("liability_ids", n.liability_ids.is_some()),
        ("offset_id", n.offset_id.is_some()),
        ("review_id", n.review_id.is_some()),
        ("late_return_id", n.late_return_id.is_some()),
    ]
    .into_iter()
    .filter_map(|(name, present)| present.then_some(name))
    .collect();
    let allowed: &[&str] = match n.kind {
        LetterKind::IntentToOffset => &["liability_ids"],
        LetterKind::OffsetNotice => &["offset_id"],
        LetterKind::Refund => &["offset_id", "late_return_id"],
        LetterKind::ReviewOutcome => &["review_id"],
    };
    if given.len() != 1 || !allowed.contains(&given[0]) {
        check.fail(
            at("kind"),
            format!(
                "a `{}` notice must name its subject with exactly one of: {}",
                n.kind,
                allowed.join(", ")
            ),
        );
        return None;
    }
    let resolve =
        |check: &mut Checker, field: &str, id: String, ids: &HashSet<String>, what: &str| {
            if ids.contains(&id) {
                Some(id)
            } else {
                check.fail(
                    at(field),
                    format!("no {what} with id `{id}` in this account"),
                );
                None
            }
        };
    let subject = if let Some(ids) = n.liability_ids {
        let ids = liability_refs(check, &at("liability_ids"), ids, known.liabilities);
        Some(NoticeSubject::Liabilities(ids))
    } else if let Some(id) = n.offset_id {
        resolve(check, "offset_id", id, known.offsets, "offset").map(NoticeSubject::Offset)
    } else if let Some(id) = n.review_id {
        resolve(check, "review_id", id, known.reviews, "review").map(NoticeSubject::Review)
    } else if let Some(id) = n.late_return_id {
        resolve(
            check,
            "late_return_id",
            id,
            known.late_returns,
            "late return",
        )
        .map(NoticeSubject::LateReturn)
    } else {
        None
    }?;
    Some(Notice {
        kind: n.kind,
        mailed_on: n.mailed_on.0,
        subject,
        undeliverable: n.undeliverable.unwrap_or(false),
    })
}
