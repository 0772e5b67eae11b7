//! What a template sees: a plain JSON view of the letter, its account and configuration,
//! for letters (`compose`) and emails (`dispatch`) alike, so both show the same facts.
//!
//! Amounts are strings (`"1234.50"`, for the `money` filter), dates are `YYYY-MM-DD`
//! strings (for the `date` filter). Only the last four digits of the taxpayer id are in
//! the view at all. Optional things are `null` so templates guard them with `{% if %}`.

use serde_json::{Value, json};

use crate::account::{Account, OffsetSource, PostalAddress, ReviewDecision};
use crate::config::Config;
use crate::decide::{DueLetter, Facts};
use crate::letter::LetterKind;

/// What a printed piece carries in its address block besides the address: the
/// Intelligent Mail barcode and, for certified mail, the article number. Plain data: the
/// template passes it through a Typst-safe filter and the layout draws it.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct MailMarks {
    /// The 65 IMb bar letters (`F`, `A`, `D`, `T`).
    pub imb: String,
    /// The certified article number as printed (groups of four digits).
    pub article: Option<String>,
}

/// Builds the template context for one letter; `Err` names what the account lacks.
pub(crate) fn context(
    account: &Account,
    letter: &DueLetter,
    config: &Config,
    piece: Option<&MailMarks>,
) -> Result<tera::Context, String> {
    tera::Context::from_value(letter_view(account, letter, config, piece)?)
        .map_err(|err| err.to_string())
}

/// The JSON view of one letter that templates see (letters and emails alike); `piece`
/// carries the mailroom's barcode and article number for a batch copy.
pub(crate) fn letter_view(
    account: &Account,
    letter: &DueLetter,
    config: &Config,
    piece: Option<&MailMarks>,
) -> Result<Value, String> {
    let subject = letter.subject.clone();
    // The barcode as the layout draws it; its bars come from the mailroom's encoder.
    let imb_svg = piece
        .map(|p| crate::mailroom::imb::svg(&p.imb))
        .transpose()
        .map_err(|err| err.to_string())?;
    let mut view = json!({
        "letter": {
            "key": letter.key,
            "kind": letter.kind,
            "variant": letter.variant,
            "title": config.titles.of(letter.kind, letter.variant),
            "date": letter.letter_date,
            "deadline": letter.deadline,
            "channel": letter.channel,
            "mail_class": letter.mail_class,
            "email_copy": letter.email_copy,
            "recipients": letter.recipients,
            "liability_ids": letter.liability_ids,
            "amounts": letter.amounts,
            "replaces_mailed_on": letter.shown.replaces_mailed_on,
        },
        "account": {
            "id": account.account_id,
            "name": account.taxpayer.name,
            "spouse_name": account.taxpayer.spouse_name,
            "tin_last4": account.taxpayer.tin_last4,
            "address": account.address.as_ref().map(PostalAddress::block),
            "email": account.valid_email(),
            "has_payment_plan": account.payment_plan.is_some(),
            "balance_as_of": account.balance_as_of,
        },
        "agency": {
            "name": config.agency.name,
            "short_name": config.agency.short_name,
            "phone": config.agency.phone,
            "hours": config.agency.hours,
            "email": config.agency.email,
            "website": config.agency.website,
            "return_address": config.agency.return_address.block(),
        },
        "review": {
            "unit": config.contacts.review.unit,
            "unit_role": config.contacts.review.unit_role,
            "address": config.contacts.review.address.block(),
        },
        "bankruptcy": {
            "unit": config.contacts.bankruptcy.unit,
            "phone": config.contacts.bankruptcy.phone,
            "hours": config.contacts.bankruptcy.hours,
            "address": config.contacts.bankruptcy.address.block(),
        },
        "collections": {
            "unit": config.contacts.collections.unit,
            "address": config.contacts.collections.address.block(),
            "fax_unit": config.contacts.collections.fax_unit,
            "fax": config.contacts.collections.fax,
        },
        "payments": {
            "online_service": config.payments.online_service,
            "online_text": config.payments.online_text,
            "coupon_note": config.payments.coupon_note,
            "payee": config.payments.payee,
            "coupon_address": config.payments.coupon_address.block(),
        },
        "federal": config.federal,
        "policy": {
            "review_window_days": config.policy.review_window_days,
            "minimum_amount": config.policy.minimum_amount,
            "interest_percent_per_month": (config.policy.interest_rate_per_month * rust_decimal::Decimal::ONE_HUNDRED).normalize().to_string(),
            "excess_refund_limit_years": config.policy.excess_refund_limit_years,
            "posting_weeks": config.policy.posting_weeks,
        },
        "statements": config.statements,
        "titles": config.titles,
        "mail": {
            "imb": piece.map(|p| p.imb.clone()),
            "imb_svg": imb_svg,
            "article": piece.and_then(|p| p.article.clone()),
        },
    });
    let extra = match (letter.kind, &letter.facts) {
        (LetterKind::IntentToOffset, Facts::IntentToOffset { lines }) => {
            let rows: Vec<Value> = lines
                .iter()
                .map(|line| {
                    let l = account.liability(&line.liability_id).ok_or_else(|| {
                        format!("liability `{}` is not on the account", line.liability_id)
                    })?;
                    Ok(json!({
                        "id": l.id, "period": l.period, "tax_type": l.tax_type,
                        "tax_type_label": tax_type_label(config, &l.tax_type),
                        "due_date": l.due_date, "tax": l.tax, "penalty": l.penalty,
                        "interest": l.interest, "balance": line.balance,
                        "projected_interest": line.projected_interest,
                    }))
                })
                .collect::<Result<_, String>>()?;
            json!({ "liabilities": in_period_order(rows) })
        }
        (LetterKind::OffsetNotice | LetterKind::Refund, facts) => {
            let offset = account.offsets.iter().find(|o| o.id == subject);
            let late = account.late_returns.iter().find(|l| l.id == subject);
            match (offset, late) {
                (Some(o), _) => {
                    let (balance_before, agency) = match &o.source {
                        OffsetSource::Federal { balance_before } => (Some(*balance_before), None),
                        OffsetSource::State { agency } => (
                            None,
                            Some(json!({
                                "name": agency.name,
                                "phone": agency.phone,
                                "address": PostalAddress::block(&agency.address),
                            })),
                        ),
                    };
                    let excess = match facts {
                        Facts::FederalOffset { excess } => *excess,
                        _ => None,
                    };
                    json!({"offset": {
                        "id": o.id, "tax_year": o.tax_year, "offset_on": o.offset_on,
                        "refund_amount": o.refund_amount, "offset_amount": o.offset_amount,
                        "all_taken": o.offset_amount == o.refund_amount,
                        "balance_before": balance_before, "joint_return": o.joint_return,
                        "posted_on": o.posted_on, "excess": excess, "agency": agency,
                        "excess_posted_on": letter.shown.excess_posted_on,
                        "refund_letter": letter.shown.refund_letter.is_some(),
                    }})
                }
                (None, Some(l)) => {
                    let (limit, barred) = match facts {
                        Facts::LateReturn {
                            excess_limit,
                            excess_barred,
                        } => (Some(*excess_limit), *excess_barred),
                        _ => (None, false),
                    };
                    json!({"late_return": {
                        "id": l.id, "period": l.period, "filed_on": l.filed_on,
                        "due_date": l.due_date, "extended_due_date": l.extended_due_date,
                        "excess_payments": l.excess_payments, "excess_limit": limit,
                        "excess_barred": barred,
                    }})
                }
                (None, None) => {
                    return Err(format!(
                        "no offset or late return `{subject}` on the account"
                    ));
                }
            }
        }
        (LetterKind::ReviewOutcome, _) => {
            let review = account
                .reviews
                .iter()
                .find(|r| r.id == subject)
                .ok_or_else(|| format!("no review `{subject}` on the account"))?;
            let decided_on = match review.decision {
                ReviewDecision::Upheld { decided_on }
                | ReviewDecision::Reduced { decided_on, .. }
                | ReviewDecision::Reversed { decided_on } => Some(decided_on),
                ReviewDecision::Pending => None,
            };
            let liabilities: Vec<Value> = review
                .liability_ids
                .iter()
                .filter_map(|id| account.liability(id))
                .map(|l| json!({"id": l.id, "period": l.period, "due_date": l.due_date, "tax_type_label": tax_type_label(config, &l.tax_type), "balance": l.balance()}))
                .collect();
            json!({"review": {
                "id": review.id, "requested_on": review.requested_on, "decided_on": decided_on,
                "liabilities": in_period_order(liabilities),
                "pay_by": letter.shown.pay_by,
            }})
        }
        _ => json!({}),
    };
    if let (Value::Object(base), Value::Object(more)) = (&mut view, extra) {
        base.extend(more);
    }
    Ok(view)
}

/// Liability rows (JSON objects with `period`, `due_date` and `id`) sorted the way a reader
/// expects a table of periods: by period, then due date, then id.
fn in_period_order(mut rows: Vec<Value>) -> Vec<Value> {
    let key = |row: &Value| {
        ["period", "due_date", "id"].map(|field| row[field].as_str().unwrap_or_default().to_owned())
    };
    rows.sort_by_key(key);
    rows
}

/// A tax type code in words for the liability table: its label in the configuration
/// (`policy.tax_type_labels`, in the letter's language); an unknown code (load refuses
/// them, so only in hand-made views) is shown with underscores as spaces.
fn tax_type_label(config: &Config, code: &str) -> String {
    match config.policy.tax_type_labels.get(code) {
        Some(label) => label.clone(),
        None => {
            let other = code;
            let words = other.replace('_', " ");
            let mut chars = words.chars();
            match chars.next() {
                Some(first) => first.to_uppercase().chain(chars).collect(),
                None => words,
            }
        }
    }
}
