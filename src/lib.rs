//! missive: the notice and correspondence pipeline of a state revenue department's
//! refund-offset program.
//!
//! Data flows one way through plain stages, each a module with its own error type:
//!
//! 1. [`load`]: account files → validated [`account::Account`]s (bad ones reported, skipped);
//! 2. [`decide`]: pure; account + as-of and mail dates → due letters, suppressions and
//!    referrals, each with a reason;
//! 3. [`plan`]: runs load and decide over a whole batch, streamed and in parallel;
//! 4. [`report`]: prints the plan as JSON (the outside contract) or as a table;
//! 5. [`compose`]: a due letter → Typst source, through Tera templates that can only emit
//!    Typst string literals;
//! 6. [`render`]: Typst compiled in-process → PDF/A-2b + PDF/UA-1 (or PNG pages);
//! 7. [`mailroom`]: a run's print letters as print-ready batches (Intelligent Mail
//!    barcode, certified article numbers, manifests and control totals), as values;
//! 8. [`dispatch`]: email letters (and copies of intents to offset) sent exactly once
//!    through a mail transport, reporting how each attempt ended;
//! 9. [`treasury_file`]: a run's Treasury actions as the file TOP takes.
//!
//! No stage touches the [`ledger`]. [`runner`] is the orchestration layer: it takes the
//! steps of a production run in order and makes every ledger write between them (the
//! order is the crash safety); [`produce`] (compose + render a plan's letters into files,
//! atomically, in parallel) belongs to that layer, and `render` uses it too.
//!
//! [`review`] is what legal reviewers use before a template may be used: sample letters,
//! template approvals (checked by [`runner`] before anything is rendered) and the lint
//! rules of `missive check`.
//!
//! Supporting modules: [`config`] (agency facts, policy numbers, calendar), [`calendar`]
//! (business days, deadlines, month arithmetic), [`money`] (exact dollars and cents),
//! [`letter`] (kinds, variants, channels, keys), [`view`] (what a letter's or email's
//! template sees), [`typst_literal`] (values quoted for Typst) and [`template_tags`] (the
//! tags of a Tera template, for the checks that read templates as text).

#![warn(missing_docs)]

pub mod account;
pub mod calendar;
pub mod compose;
pub mod config;
pub mod decide;
pub mod dispatch;
pub mod language;
pub mod ledger;
pub mod letter;
pub mod load;
pub mod mailroom;
pub mod money;
pub mod plan;
pub mod produce;
pub mod render;
pub mod report;
pub mod review;
pub mod runner;
pub mod template_tags;
pub mod translations;
pub mod treasury_file;
pub mod typst_literal;
pub mod view;
