//! The ledger's contract: every test here is written once and runs against each backend
//! (`contract::sqlite::…`, `contract::memory::…`, `contract::postgres::…`: a real
//! server, see `postgres/server`, skipped with a visible line when none can start), so a backend that passes them keeps the
//! invariants the module docs of `crate::ledger` state. What only one backend can check
//! (SQLite's triggers, migrations, the lock file) is in that backend's own tests.
//!
//! A new backend implements [`Backend`] and adds one line to `contract!` below.

mod approvals;
mod letters;
pub(in crate::ledger) mod mailroom;
mod outbox;
mod runs;
mod treasury;
mod work;

use chrono::NaiveDate;
use tempfile::TempDir;

use super::*;
use crate::letter::{Channel, LetterKey, LetterKind, MailClass, Variant};

/// A backend under test: a fresh, empty ledger, and the same ledger opened again.
pub(in crate::ledger) trait Backend: Ledger + Sized {
    /// What keeps the store alive while the test runs (SQLite: its directory).
    type Home;

    /// A new, empty ledger.
    fn fresh() -> (Self::Home, Self);

    /// The same store opened again (closing `ledger` first): what was committed is there.
    fn reopen(home: &Self::Home, ledger: Self) -> Self;
}

impl Backend for SqliteLedger {
    type Home = TempDir;

    fn fresh() -> (TempDir, SqliteLedger) {
        let dir = tempfile::tempdir().expect("temp dir");
        let ledger = SqliteLedger::open(&dir.path().join("missive.db")).expect("open ledger");
        (dir, ledger)
    }

    fn reopen(home: &TempDir, ledger: SqliteLedger) -> SqliteLedger {
        drop(ledger);
        SqliteLedger::open(&home.path().join("missive.db")).expect("reopen")
    }
}

impl Backend for PgLedger {
    type Home = PgLocation;

    fn fresh() -> (PgLocation, PgLedger) {
        let db = crate::ledger::postgres::server::fresh_database("contract")
            .expect("a PostgreSQL server");
        let Ok(Location::Postgres(location)) = Location::parse(&db.url, None) else {
            panic!("`{}` is a PostgreSQL URL", db.url);
        };
        let ledger = PgLedger::open(&location).expect("open ledger");
        (location, ledger)
    }

    fn reopen(home: &PgLocation, ledger: PgLedger) -> PgLedger {
        drop(ledger);
        PgLedger::open(home).expect("reopen")
    }
}

impl Backend for MemoryLedger {
    type Home = ();

    fn fresh() -> ((), MemoryLedger) {
        ((), MemoryLedger::new())
    }

    fn reopen(_home: &(), ledger: MemoryLedger) -> MemoryLedger {
        ledger
    }
}

/// Runs each contract test (`group::name`) against every backend.
macro_rules! contract {
    ($($group:ident::$test:ident),+ $(,)?) => {
        mod sqlite {
            $(#[test]
            fn $test() {
                super::$group::$test::<crate::ledger::SqliteLedger>();
            })+
        }

        mod memory {
            $(#[test]
            fn $test() {
                super::$group::$test::<crate::ledger::MemoryLedger>();
            })+
        }

        mod postgres {
            $(#[test]
            fn $test() {
                if crate::ledger::postgres::server::available(stringify!($test)) {
                    super::$group::$test::<crate::ledger::PgLedger>();
                }
            })+
        }
    };
}

contract! {
    runs::beginning_a_run_interrupts_a_stale_running_one,
    runs::a_failed_run_keeps_its_reason_and_may_be_resumed,
    letters::record_planned_inserts_and_is_idempotent,
    letters::record_planned_reissues_a_returned_key_and_skips_a_rendered_one,
    letters::record_rendered_only_moves_planned_letters,
    letters::record_rendered_refuses_a_file_of_other_data,
    letters::set_state_refuses_impossible_changes_and_records_one_event_per_change,
    letters::prior_notices_map_every_kind_and_variant,
    letters::ten_thousand_letters_plan_and_render_in_chunks,
    letters::a_key_given_twice_in_one_call_counts_as_two_calls,
    treasury::referrals_are_recorded_once_per_notice,
    treasury::what_top_holds_is_the_latest_action_and_a_run_records_each_action_once,
    approvals::approvals_cover_exactly_one_version_and_survive_reopening,
    approvals::approvals_need_a_reviewer,
    mailroom::serials_are_allocated_once_and_kept_until_batched,
    mailroom::an_exhausted_range_allocates_nothing,
    mailroom::a_piece_goes_into_one_batch_once,
    mailroom::a_letter_planned_again_before_rendering_keeps_its_piece_and_marks,
    outbox::an_email_is_sent_once_and_an_interrupted_send_waits_for_a_person,
    outbox::a_replanned_letter_replaces_its_pending_email_but_never_one_in_flight,
    work::claims_are_disjoint_limited_and_in_key_order,
    work::an_expired_claim_is_claimable_again,
    work::a_replan_replaces_the_payload_and_clears_the_claim,
    work::claims_and_recordings_follow_the_current_plan,
    work::payloads_in_several_calls_read_back_and_withdraw_only_what_is_no_longer_planned,
}

pub(in crate::ledger) fn date(text: &str) -> NaiveDate {
    text.parse().expect("test date")
}

/// Starts a run with fixed dates.
pub(in crate::ledger) fn start(ledger: &mut impl Ledger) -> RunInfo {
    ledger
        .begin_run(&NewRun {
            as_of: date("2026-12-01"),
            mail_date: date("2026-12-02"),
            config_sha256: "c0ffee".to_owned(),
            accounts: "samples/accounts".to_owned(),
            out_dir: "out".to_owned(),
        })
        .expect("begin run")
}

/// A planned letter of `kind`/`variant` about `subject` for `account`.
pub(in crate::ledger) fn letter(
    account: &str,
    kind: LetterKind,
    variant: Option<Variant>,
    subject: &str,
) -> PlannedLetter {
    let intent = kind == LetterKind::IntentToOffset;
    PlannedLetter {
        key: LetterKey::new(account, kind, subject),
        account_id: account.to_owned(),
        kind,
        variant,
        channel: Channel::Print,
        mail_class: Some(if intent {
            MailClass::Certified
        } else {
            MailClass::FirstClass
        }),
        letter_date: date("2026-12-02"),
        deadline: intent.then(|| date("2027-02-01")),
        liability_ids: if intent {
            subject.split('+').map(str::to_owned).collect()
        } else {
            vec!["L1".to_owned()]
        },
        subject: subject.to_owned(),
        data_sha256: "d1".to_owned(),
    }
}

/// An intent to offset for `account` about liability `L1`.
pub(in crate::ledger) fn intent(account: &str) -> PlannedLetter {
    letter(account, LetterKind::IntentToOffset, None, "L1")
}

/// The file a letter renders to in tests.
pub(in crate::ledger) fn file_of(letter: &PlannedLetter) -> RenderedFile {
    RenderedFile {
        key: letter.key.clone(),
        file: format!("{}.pdf", letter.key.file_stem()),
        file_sha256: format!("sha-{}", letter.key),
        pages: 2,
        template: format!("{}.typ", letter.kind),
        template_sha256: "t1".to_owned(),
        marks: None,
        data_sha256: letter.data_sha256.clone(),
        payload_sha256: None,
    }
}

pub(in crate::ledger) fn new_approval(sha: &str, reviewer: &str) -> NewApproval {
    NewApproval {
        template: "letters/refund.typ.tera".to_owned(),
        template_sha256: sha.to_owned(),
        reviewer: reviewer.to_owned(),
        note: "checked against letters.md".to_owned(),
        sources: [("letters/refund.typ.tera".to_owned(), format!("text {sha}"))]
            .into_iter()
            .collect(),
    }
}
