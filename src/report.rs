//! Printing a [`Plan`]: JSON for machines (interface.md), an aligned table for people.

use std::collections::BTreeMap;
use std::io::{self, Write};

use crate::decide::{Amounts, DueLetter, HoldReason, UpdateAction};
use crate::ledger::{Event, LetterRecord, LetterState, ReferralRecord, TreasuryRecord, stamp};
use crate::letter::{Channel, LetterKind, MailClass};
use crate::money::Money;
use crate::plan::Plan;

/// Text from input made safe to show in a terminal or a table: every control character
/// (escape sequences, line breaks, tabs), line or paragraph separator and format character
/// (bidi controls) is written as `\u{1b}`, so a hostile account id can neither clear the
/// operator's screen nor forge or reorder what is shown. Everything else is unchanged.
pub fn escape(text: &str) -> std::borrow::Cow<'_, str> {
    use crate::load::printable::is_invisible;
    if !text.chars().any(is_invisible) {
        return std::borrow::Cow::Borrowed(text);
    }
    let mut out = String::with_capacity(text.len() + 8);
    for c in text.chars() {
        if is_invisible(c) {
            out.push_str(&format!("\\u{{{:x}}}", u32::from(c)));
        } else {
            out.push(c);
        }
    }
    std::borrow::Cow::Owned(out)
}

/// [`escape`] line by line: a message's own line breaks (a hint below an error) stay.
pub fn escape_lines(text: &str) -> String {
    text.split('\n').map(escape).collect::<Vec<_>>().join("\n")
}

/// Writes the plan as pretty JSON with a trailing newline.
pub fn write_json(plan: &Plan, out: &mut impl Write) -> io::Result<()> {
    serde_json::to_writer_pretty(&mut *out, plan)?;
    writeln!(out)
}

/// The one amount a table row shows: the payoff of an intent to offset, the offset of an
/// offset notice, the refund of a refund, the balance of a review outcome.
pub fn headline_amount(letter: &DueLetter) -> String {
    let amount = match &letter.amounts {
        Amounts::IntentToOffset { payoff, .. } => payoff,
        Amounts::FederalOffset { offset, .. } | Amounts::StateOffset { offset, .. } => offset,
        Amounts::ExcessRefund { refund } | Amounts::LateReturnRefund { refund, .. } => refund,
        Amounts::Review { balance, .. } => balance,
    };
    amount.dollars()
}

/// Writes rows as columns padded to the widest cell, two spaces apart.
fn write_columns(out: &mut impl Write, rows: &[Vec<String>]) -> io::Result<()> {
    let rows: Vec<Vec<String>> = rows
        .iter()
        .map(|row| row.iter().map(|cell| escape(cell).into_owned()).collect())
        .collect();
    let columns = rows.iter().map(Vec::len).max().unwrap_or(0);
    let widths: Vec<usize> = (0..columns)
        .map(|c| {
            rows.iter()
                .filter_map(|row| row.get(c))
                .map(|cell| cell.chars().count())
                .max()
                .unwrap_or(0)
        })
        .collect();
    for row in rows {
        let mut line = String::new();
        for (c, cell) in row.iter().enumerate() {
            line.push_str(cell);
            if c + 1 < row.len() {
                let pad = widths[c].saturating_sub(cell.chars().count()) + 2;
                line.extend(std::iter::repeat_n(' ', pad));
            }
        }
        writeln!(out, "{}", line.trim_end())?;
    }
    Ok(())
}

fn or_dash<T: ToString>(value: Option<T>) -> String {
    value.map_or_else(|| "-".to_owned(), |v| v.to_string())
}

/// Writes the plan as tables: letters, suppressed, referrals, held referrals, then totals by
/// kind and channel. Errors are not written here; the caller prints them to stderr.
pub fn write_table(plan: &Plan, out: &mut impl Write) -> io::Result<()> {
    writeln!(
        out,
        "missive plan: as of {}, mail date {}",
        plan.as_of, plan.mail_date
    )?;

    writeln!(out, "\nLETTERS ({})", plan.letters.len())?;
    let mut rows = vec![
        [
            "KEY",
            "KIND",
            "VARIANT",
            "CHANNEL",
            "CLASS",
            "DEADLINE",
            "AMOUNT",
            "RECIPIENTS",
        ]
        .map(String::from)
        .to_vec(),
    ];
    for l in &plan.letters {
        let channel = if l.email_copy {
            "print+email".to_owned()
        } else {
            l.channel.as_str().to_owned()
        };
        rows.push(vec![
            l.key.to_string(),
            l.kind.to_string(),
            or_dash(l.variant),
            channel,
            or_dash(l.mail_class.map(MailClass::as_str)),
            or_dash(l.deadline),
            headline_amount(l),
            l.recipients.join(" & "),
        ]);
    }
    write_columns(out, &rows)?;

    writeln!(out, "\nSUPPRESSED ({})", plan.suppressed.len())?;
    let mut rows = vec![
        ["ACCOUNT", "KIND", "REASON", "LIABILITIES", "WHY"]
            .map(String::from)
            .to_vec(),
    ];
    for s in &plan.suppressed {
        rows.push(vec![
            s.account_id.clone(),
            s.kind.to_string(),
            s.reason.as_str().to_owned(),
            if s.liability_ids.is_empty() {
                "-".to_owned()
            } else {
                s.liability_ids.join("+")
            },
            s.why.clone(),
        ]);
    }
    write_columns(out, &rows)?;

    writeln!(out, "\nREFERRALS ({})", plan.referrals.len())?;
    let mut rows = vec![
        [
            "ACCOUNT",
            "LIABILITIES",
            "AMOUNT",
            "NOTICE",
            "DEADLINE PASSED",
        ]
        .map(String::from)
        .to_vec(),
    ];
    for r in &plan.referrals {
        rows.push(vec![
            r.account_id.clone(),
            r.liability_ids.join("+"),
            r.amount.dollars(),
            r.notice_key.to_string(),
            r.deadline_passed.to_string(),
        ]);
    }
    write_columns(out, &rows)?;

    write_held_and_updates(plan, out)?;

    writeln!(out, "\nTOTALS")?;
    let mut by_kind: BTreeMap<LetterKind, usize> = BTreeMap::new();
    for l in &plan.letters {
        *by_kind.entry(l.kind).or_default() += 1;
    }
    let kinds: Vec<String> = LetterKind::ALL
        .iter()
        .map(|k| format!("{k} {}", by_kind.get(k).copied().unwrap_or(0)))
        .collect();
    writeln!(out, "by kind:     {}", kinds.join(", "))?;
    let count = |f: &dyn Fn(&DueLetter) -> bool| plan.letters.iter().filter(|l| f(l)).count();
    writeln!(
        out,
        "by channel:  print {} (certified {}, first class {}), email {}, email copies {}",
        count(&|l| l.channel == Channel::Print),
        count(&|l| l.mail_class == Some(MailClass::Certified)),
        count(&|l| l.mail_class == Some(MailClass::FirstClass)),
        count(&|l| l.channel == Channel::Email),
        count(&|l| l.email_copy),
    )?;
    writeln!(
        out,
        "letters {}, suppressed {}, referrals {} ({}), referrals held {}, treasury updates {}, accounts planned {}, errors {}",
        plan.letters.len(),
        plan.suppressed.len(),
        plan.referrals.len(),
        plan.referrals
            .iter()
            .map(|r| r.amount)
            .sum::<Money>()
            .dollars(),
        plan.referrals_held.len(),
        plan.treasury_updates.len(),
        plan.accounts_planned,
        plan.errors.len()
    )
}

/// The held referrals and Treasury updates sections, each with its totals: held by
/// reason; updates by action, in dollars as the Treasury file's control totals count them
/// (a decrease by what it takes off, a delete by what TOP held).
fn write_held_and_updates(plan: &Plan, out: &mut impl Write) -> io::Result<()> {
    writeln!(out, "\nREFERRALS HELD ({})", plan.referrals_held.len())?;
    let mut rows = vec![
        ["ACCOUNT", "NOTICE", "LIABILITIES", "REASON", "WHY"]
            .map(String::from)
            .to_vec(),
    ];
    let mut by_reason: BTreeMap<HoldReason, usize> = BTreeMap::new();
    for h in &plan.referrals_held {
        *by_reason.entry(h.reason).or_default() += 1;
        rows.push(vec![
            h.account_id.clone(),
            h.notice_key.to_string(),
            h.liability_ids.join("+"),
            h.reason.as_str().to_owned(),
            h.why.clone(),
        ]);
    }
    write_columns(out, &rows)?;
    let reasons: Vec<String> = by_reason
        .iter()
        .map(|(reason, n)| format!("{} {n}", reason.as_str()))
        .collect();
    writeln!(
        out,
        "held total: {}{}",
        plan.referrals_held.len(),
        if reasons.is_empty() {
            String::new()
        } else {
            format!(" ({})", reasons.join(", "))
        }
    )?;

    writeln!(out, "\nTREASURY UPDATES ({})", plan.treasury_updates.len())?;
    let mut rows = vec![
        [
            "ACCOUNT",
            "NOTICE",
            "LIABILITIES",
            "ACTION",
            "REASON",
            "BEFORE",
            "AFTER",
            "WHY",
        ]
        .map(String::from)
        .to_vec(),
    ];
    let mut totals: BTreeMap<UpdateAction, (usize, Money)> = BTreeMap::new();
    for u in &plan.treasury_updates {
        let entry = totals.entry(u.action).or_insert((0, Money::ZERO));
        entry.0 += 1;
        entry.1 = entry.1 + (u.amount_before - u.amount_after);
        rows.push(vec![
            u.account_id.clone(),
            u.notice_key.to_string(),
            u.liability_ids.join("+"),
            u.action.as_str().to_owned(),
            u.reason.as_str().to_owned(),
            u.amount_before.dollars(),
            u.amount_after.dollars(),
            u.why.clone(),
        ]);
    }
    write_columns(out, &rows)?;
    let actions: Vec<String> = [UpdateAction::Decrease, UpdateAction::Delete]
        .iter()
        .map(|action| {
            let (n, dollars) = totals.get(action).copied().unwrap_or((0, Money::ZERO));
            format!("{} {n} ({})", action.as_str(), dollars.dollars())
        })
        .collect();
    writeln!(out, "updates total: {}", actions.join(", "))
}

/// First 12 hex digits of a hash, enough to tell versions apart in a table.
fn short(hash: Option<&str>) -> String {
    hash.map_or_else(|| "-".to_owned(), |h| h.chars().take(12).collect())
}

/// Writes `missive history` as a table: one row per letter (state, run, template and file
/// hashes), its state changes indented below it, then the account's referrals.
pub fn write_history(
    out: &mut impl Write,
    letters: &[(LetterRecord, Vec<Event>)],
    referrals: &[ReferralRecord],
) -> io::Result<()> {
    writeln!(out, "LETTERS ({})", letters.len())?;
    for (letter, events) in letters {
        let rows = vec![
            [
                "KEY",
                "STATE",
                "RUN",
                "CHANNEL",
                "DATE",
                "TEMPLATE",
                "TEMPLATE SHA",
                "FILE SHA",
                "PAGES",
            ]
            .map(String::from)
            .to_vec(),
            vec![
                letter.key.to_string(),
                letter.state.as_str().to_owned(),
                letter.run_id.to_string(),
                letter.channel.as_str().to_owned(),
                letter.letter_date.to_string(),
                letter.template.clone().unwrap_or_else(|| "-".to_owned()),
                short(letter.template_sha256.as_deref()),
                short(letter.file_sha256.as_deref()),
                or_dash(letter.pages),
            ],
        ];
        writeln!(out)?;
        write_columns(out, &rows)?;
        let mut rows = vec![vec![
            "  AT".to_owned(),
            "RUN".to_owned(),
            "FROM".to_owned(),
            "TO".to_owned(),
            "DETAIL".to_owned(),
        ]];
        for e in events {
            rows.push(vec![
                format!("  {}", stamp::text(&e.at)),
                or_dash(e.run_id),
                or_dash(e.from_state.map(LetterState::as_str)),
                e.to_state.as_str().to_owned(),
                e.detail.clone(),
            ]);
        }
        write_columns(out, &rows)?;
    }
    if !referrals.is_empty() {
        writeln!(out, "\nREFERRALS ({})", referrals.len())?;
        let mut rows = vec![
            [
                "NOTICE",
                "LIABILITIES",
                "AMOUNT",
                "DEADLINE PASSED",
                "RUN",
                "AT",
            ]
            .map(String::from)
            .to_vec(),
        ];
        for r in referrals {
            rows.push(vec![
                r.notice_key.to_string(),
                r.liability_ids.join("+"),
                r.amount.dollars(),
                r.deadline_passed.to_string(),
                r.run_id.to_string(),
                stamp::text(&r.at),
            ]);
        }
        write_columns(out, &rows)?;
    }
    Ok(())
}

/// Writes an account's Treasury actions for `missive history`: each referral added,
/// decreased or deleted, with its run, time, amounts, reason and why.
pub fn write_treasury_history(out: &mut impl Write, records: &[TreasuryRecord]) -> io::Result<()> {
    if records.is_empty() {
        return Ok(());
    }
    writeln!(out, "\nTREASURY ({})", records.len())?;
    let mut rows = vec![
        [
            "RUN",
            "AT",
            "ACTION",
            "NOTICE",
            "LIABILITIES",
            "BEFORE",
            "AFTER",
            "REASON",
            "WHY",
        ]
        .map(String::from)
        .to_vec(),
    ];
    for r in records {
        let a = &r.action;
        rows.push(vec![
            r.run_id.to_string(),
            stamp::text(&r.at),
            a.action.clone(),
            a.notice_key.to_string(),
            a.liability_ids.join("+"),
            a.amount_before.dollars(),
            a.amount_after.dollars(),
            a.reason.clone(),
            a.why.clone(),
        ]);
    }
    write_columns(out, &rows)
}

/// An error and its causes on one line, joined by `: ` ("Failed to render 'x': Variable
/// `y` not found"): how template errors are reported by letters and emails alike.
pub fn cause_chain(err: &dyn std::error::Error) -> String {
    let mut parts = vec![err.to_string()];
    let mut source = err.source();
    while let Some(cause) = source {
        parts.push(cause.to_string());
        source = cause.source();
    }
    parts.join(": ")
}
