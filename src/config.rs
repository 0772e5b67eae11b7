//! Configuration: everything state-specific that is not a template.
//!
//! Agency name and contacts, payment instructions, policy numbers (review window, minimum,
//! interest rate, limits), the agency's own policy statements, and the holiday calendar all
//! live in `missive.toml`, so another state can run missive by editing configuration and
//! templates only. Every key is required and unknown keys are refused, so a typo or an
//! omission is an error naming the key (`policy.minimum_amount: …`), never a silent
//! default. The repository's `missive.toml` is compiled in as the built-in default, used
//! when no `--config` is given and no `missive.toml` is in the working directory.

use std::path::{Path, PathBuf};

use chrono::NaiveDate;
use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::calendar::{HolidayCalendar, StateHoliday};
use crate::letter::{LetterKind, Variant};
use crate::money::Money;

/// The shipped configuration (Connecticut DRS), compiled in.
pub const BUILT_IN: &str = include_str!("../missive.toml");

/// The whole configuration file.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// The agency that sends the letters.
    pub agency: Agency,
    /// Units taxpayers write or call about specific matters.
    pub contacts: Contacts,
    /// How to pay.
    pub payments: Payments,
    /// Federal programme and IRS facts quoted in letters.
    pub federal: Federal,
    /// Numbers that drive the decisions.
    pub policy: Policy,
    /// The agency's statements of its own policy, printed as written.
    pub statements: Statements,
    /// Each letter's title: the heading of the letter, its PDF title and its email's subject.
    pub titles: Titles,
    /// The texts above in Spanish (`[es]`, see [`crate::translations`]).
    pub es: crate::translations::Translation,
    /// Which days are not business days.
    pub calendar: CalendarConfig,
    /// Legal review of templates.
    pub review: ReviewConfig,
    /// How letters go out by email.
    pub email: EmailConfig,
    /// Mailroom: Intelligent Mail barcode, certified article numbers, batch size.
    pub mail: MailConfig,
    /// Where the ledger is (`[ledger]`; absent: SQLite beside the output, as always).
    #[serde(default, skip_serializing_if = "LedgerConfig::is_unset")]
    pub ledger: LedgerConfig,
}

/// Where the ledger is kept, when not the SQLite file beside the output.
#[derive(Debug, Clone, Default, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct LedgerConfig {
    /// A `postgres://user@host:port/db` URL (no password) or a SQLite file path; `--ledger`
    /// overrides it.
    #[serde(default)]
    pub url: Option<String>,
    /// The NAME of the environment variable holding the PostgreSQL password (never the
    /// password itself); absent: connect without one (trust, peer or a `.pgpass` file).
    #[serde(default)]
    pub password_env: Option<String>,
    /// Only so that a password put here is refused with a clear message.
    #[serde(default, skip_serializing)]
    password: Option<toml::Value>,
}

impl LedgerConfig {
    /// True when the table is absent or empty.
    pub fn is_unset(&self) -> bool {
        self == &LedgerConfig::default()
    }

    /// Meaning checks of `[ledger]`: no password anywhere, a URL that parses.
    fn check(&self) -> Result<(), (String, String)> {
        let fail = |key: &str, message: String| Err((key.to_owned(), message));
        if self.password.is_some() {
            return fail(
                "ledger.password",
                "a password is never kept in the configuration: put it in an environment \
                 variable and name that variable in `ledger.password_env`"
                    .to_owned(),
            );
        }
        if self.password_env.as_deref() == Some("") {
            return fail(
                "ledger.password_env",
                "must name an environment variable".to_owned(),
            );
        }
        if let Some(url) = &self.url {
            // The password variable is read when the ledger is opened, not here.
            if let Err(err) = crate::ledger::Location::parse(url, None) {
                return fail("ledger.url", err.to_string());
            }
        }
        Ok(())
    }
}

/// Legal review of templates.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct ReviewConfig {
    /// Whether `run` refuses letters whose exact template version (template, partials and
    /// layout) no reviewer approved (`missive approve`).
    pub require_approval: bool,
}

/// How TLS is used on the SMTP connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum TlsMode {
    /// Plain text: only for a server on the same machine (tests, a local relay).
    None,
    /// Plain connection upgraded with STARTTLS (port 587); refused if the server cannot.
    Starttls,
    /// TLS from the first byte (port 465).
    Tls,
}

/// Email delivery: sender, content policy and the SMTP server.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct EmailConfig {
    /// The From mailbox (`Name <address>`).
    pub from: String,
    /// The Reply-To mailbox.
    pub reply_to: String,
    /// Attach the letter's PDF. When false the email states no amounts: it only says a
    /// letter is waiting and how to view it.
    pub attach_pdf: bool,
    /// Where a taxpayer views letters online (quoted when the PDF is not attached).
    pub view_url: String,
    /// SMTP server host name.
    pub host: String,
    /// SMTP server port.
    pub port: u16,
    /// `none`, `starttls` or `tls`.
    pub tls: TlsMode,
    /// SMTP user name; absent means no authentication.
    #[serde(default)]
    pub user: Option<String>,
    /// The NAME of the environment variable that holds the SMTP password (never the
    /// password itself: configuration files get copied and committed).
    pub password_env: String,
    /// SMTP connections kept open and used at once (also the most letters in flight).
    pub pool_size: usize,
    /// The most messages handed to the server per second.
    pub rate_per_second: f64,
    /// Further attempts after a transient failure (4xx, connection lost before the
    /// message was complete), with doubling backoff.
    pub max_retries: u32,
    /// The first backoff in milliseconds; each retry doubles it.
    pub retry_backoff_ms: u64,
    /// Seconds to wait for the server on connect and on each reply.
    pub timeout_seconds: u64,
}

/// Mailroom settings: what goes into each piece's Intelligent Mail barcode and certified
/// article number, and how large a print batch is.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct MailConfig {
    /// IMb barcode id (2 digits, the second 0–4); `00` when no presort endorsement.
    pub barcode_id: String,
    /// The agency's USPS Mailer ID (6 or 9 digits).
    pub mailer_id: String,
    /// IMb service type id (3 digits) of first-class pieces.
    pub service_type_first_class: String,
    /// IMb service type id (3 digits) of certified pieces.
    pub service_type_certified: String,
    /// First IMb serial number to use (inclusive).
    pub serial_first: u64,
    /// Last IMb serial number (inclusive); 9 digits with a 6-digit mailer id, 6 with a 9-digit one.
    pub serial_last: u64,
    /// Leading digits of every certified article number (the rest is serial + check digit).
    pub certified_prefix: String,
    /// First certified article serial (inclusive).
    pub certified_first: u64,
    /// Last certified article serial (inclusive); must fit in 19 − prefix length digits.
    pub certified_last: u64,
    /// Letters per batch PDF when `--batch-size` is not given.
    pub batch_size: usize,
}

/// A mailing address in configuration.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Address {
    /// Lines above the city line (organisation unit, street), in order.
    pub lines: Vec<String>,
    /// City or town.
    pub city: String,
    /// Two-letter state code.
    pub state: String,
    /// ZIP or ZIP+4.
    pub zip: String,
}

impl Address {
    /// The address block as printed: the configured lines, then `CITY ST ZIP`.
    pub fn block(&self) -> Vec<String> {
        let mut lines = self.lines.clone();
        lines.push(format!("{} {} {}", self.city, self.state, self.zip));
        lines
    }
}

/// The sending agency.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Agency {
    /// Full name, as on the letterhead.
    pub name: String,
    /// Short name used in running text ("DRS").
    pub short_name: String,
    /// Main telephone printed on every letter.
    pub phone: String,
    /// Telephone hours printed beside it.
    pub hours: String,
    /// General email address.
    pub email: String,
    /// Website.
    pub website: String,
    /// Return address on the letterhead and envelope.
    pub return_address: Address,
}

/// Units for specific matters.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Contacts {
    /// Where a request for review and its evidence go.
    pub review: ReviewContact,
    /// Who handles bankruptcy cases.
    pub bankruptcy: BankruptcyContact,
    /// Who adjusts garnishments on proof of a federal offset, and receives late returns.
    pub collections: CollectionsContact,
}

/// The review unit.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct ReviewContact {
    /// Unit name ("SIS Unit").
    pub unit: String,
    /// What the unit does, in words, printed after its name on first use ("the unit that
    /// reviews offset disputes"): an initialism alone means nothing to a taxpayer.
    pub unit_role: String,
    /// Where to send evidence.
    pub address: Address,
}

/// The bankruptcy unit.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct BankruptcyContact {
    /// Unit name.
    pub unit: String,
    /// Telephone.
    pub phone: String,
    /// Telephone hours.
    pub hours: String,
    /// Where to mail case information.
    pub address: Address,
}

/// The collections unit.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct CollectionsContact {
    /// Unit name.
    pub unit: String,
    /// Mailing address.
    pub address: Address,
    /// Name of the unit the fax reaches.
    pub fax_unit: String,
    /// Fax number.
    pub fax: String,
}

/// Payment instructions.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Payments {
    /// Name of the online service ("Taxpayer Service Center (TSC-IND)").
    pub online_service: String,
    /// How to pay online, printed as written (in every letter that tells how to pay).
    pub online_text: String,
    /// What paying online means for the coupon, printed only in letters that print one.
    pub coupon_note: String,
    /// Who checks are made payable to.
    pub payee: String,
    /// Where the payment coupon is mailed.
    pub coupon_address: Address,
}

/// Federal facts quoted in letters.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Federal {
    /// The federal offset programme's name.
    pub program: String,
    /// The bureau that runs it.
    pub bureau: String,
    /// IRS telephone for forms (Form 8379).
    pub irs_forms_phone: String,
    /// IRS telephone for help completing them.
    pub irs_help_phone: String,
    /// IRS website.
    pub irs_website: String,
}

/// Numbers that drive the decisions.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Policy {
    /// Days after the notice to pay or request a review (60).
    pub review_window_days: u32,
    /// Smallest total worth a notice or referral ($25.00).
    pub minimum_amount: Money,
    /// Interest per month or fraction of a month on unpaid tax (0.01).
    pub interest_rate_per_month: Decimal,
    /// Years after the due date a non-judgment debt may still be collected (10).
    pub collection_limit_years: u32,
    /// Years after the (extended) due date within which excess payments are refunded (3).
    pub excess_refund_limit_years: u32,
    /// Weeks an offset payment takes to post (4), quoted in letters.
    pub posting_weeks: u32,
    /// Tax types the federal refund offset may collect (26 U.S.C. 6402(e): state income
    /// tax only). Default `["individual_income"]`; any other type is `not_income_tax`.
    #[serde(default = "default_offsetable_tax_types")]
    pub offsetable_tax_types: Vec<String>,
    /// Every tax type an account may carry, with its label as letters print it. A
    /// liability whose type is not here is an input error, never a blank label.
    pub tax_type_labels: std::collections::BTreeMap<String, String>,
}

/// `policy.offsetable_tax_types` when absent: individual income tax only.
fn default_offsetable_tax_types() -> Vec<String> {
    vec!["individual_income".to_owned()]
}

impl Policy {
    /// True when the federal refund offset may collect this tax type.
    pub fn is_offsetable(&self, tax_type: &str) -> bool {
        self.offsetable_tax_types.iter().any(|t| t == tax_type)
    }
}

/// The agency's own policy statements, printed as written.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Statements {
    /// About fees for an offset.
    pub fees: String,
    /// What a payment plan does and does not do.
    pub payment_plan: String,
    /// That future refunds may be offset until the debt is paid.
    pub future_offsets: String,
    /// That the agency updates the federal programme when the balance changes.
    pub balance_updates: String,
    /// What to do about a garnishment after a federal offset.
    pub garnishment: String,
    /// The taxpayer's right to inspect and copy the agency's records of the debt, and how
    /// to ask (intent to offset).
    pub records_access: String,
    /// The offer to discuss a payment agreement (intent to offset; followed by
    /// `payment_plan`, which says such an agreement does not stop the offset).
    pub payment_agreement: String,
    /// The legal authority for the offset: the agency's agreement with the Treasury under
    /// the Debt Collection Improvement Act, 26 U.S.C. 6402(e) (intent to offset).
    pub legal_authority: String,
    /// That a taxpayer in bankruptcy must still file tax returns (intent to offset).
    pub bankruptcy_filing: String,
    /// What a taxpayer who has not filed a return for a listed period should do; the
    /// letter follows it with the collections address and fax (intent to offset).
    pub late_filers: String,
}

/// Letter titles, one per kind and variant.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Titles {
    /// Notice of intent to offset.
    pub intent_to_offset: String,
    /// Offset notice, federal refund.
    pub offset_notice_federal: String,
    /// Offset notice, state refund for another agency.
    pub offset_notice_state: String,
    /// Refund of an excess federal offset.
    pub refund_excess_offset: String,
    /// Refund after a late return.
    pub refund_late_return: String,
    /// Review outcome: the debt stands.
    pub review_outcome_upheld: String,
    /// Review outcome: the debt is reduced.
    pub review_outcome_reduced: String,
    /// Review outcome: the debt is withdrawn.
    pub review_outcome_reversed: String,
}

impl Titles {
    /// The title of a letter of `kind` and `variant` (a kind with variants and none given
    /// gets its first variant's title).
    pub fn of(&self, kind: LetterKind, variant: Option<Variant>) -> &str {
        match (kind, variant) {
            (LetterKind::IntentToOffset, _) => &self.intent_to_offset,
            (LetterKind::OffsetNotice, Some(Variant::State)) => &self.offset_notice_state,
            (LetterKind::OffsetNotice, _) => &self.offset_notice_federal,
            (LetterKind::Refund, Some(Variant::LateReturn)) => &self.refund_late_return,
            (LetterKind::Refund, _) => &self.refund_excess_offset,
            (LetterKind::ReviewOutcome, Some(Variant::Reduced)) => &self.review_outcome_reduced,
            (LetterKind::ReviewOutcome, Some(Variant::Reversed)) => &self.review_outcome_reversed,
            (LetterKind::ReviewOutcome, _) => &self.review_outcome_upheld,
        }
    }
}

/// Holiday calendar settings.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct CalendarConfig {
    /// Whether the eleven federal holidays of 5 U.S.C. 6103(a) apply.
    pub federal_holidays: bool,
    /// Built-in state holiday rules to apply.
    pub state_holidays: Vec<StateHoliday>,
    /// Extra dates the agency is closed, taken as given: TOML dates (`2026-12-24`) or
    /// strings (`"2026-12-24"`).
    #[serde(deserialize_with = "closure_dates")]
    pub closures: Vec<NaiveDate>,
}

/// Reads closure dates written either as TOML local dates or as `YYYY-MM-DD` strings.
fn closure_dates<'de, D: serde::Deserializer<'de>>(
    deserializer: D,
) -> Result<Vec<NaiveDate>, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum DateInput {
        Text(String),
        Toml(toml::value::Datetime),
    }
    let inputs = Vec::<DateInput>::deserialize(deserializer)?;
    inputs
        .into_iter()
        .map(|input| {
            let text = match input {
                DateInput::Text(text) => text,
                DateInput::Toml(datetime)
                    if datetime.time.is_none() && datetime.offset.is_none() =>
                {
                    datetime.to_string()
                }
                DateInput::Toml(datetime) => {
                    return Err(serde::de::Error::custom(format!(
                        "`{datetime}` is not a plain date: write 2026-12-24"
                    )));
                }
            };
            crate::load::parse_iso_date(&text).ok_or_else(|| {
                serde::de::Error::custom(format!("`{text}` is not a date: write 2026-12-24"))
            })
        })
        .collect()
}

/// The configuration could not be used: nothing can run (exit 2).
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The file could not be read.
    #[error("failed to read configuration `{path}`")]
    Read {
        /// The file.
        path: PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// The file is not TOML, or a key is missing, unknown or of the wrong type.
    #[error("invalid configuration `{path}`: {key}: {message}")]
    Invalid {
        /// The file (or `built-in`).
        path: PathBuf,
        /// Dotted path of the key at fault (`policy.minimum_amount`), or `(file)`.
        key: String,
        /// What is wrong.
        message: String,
    },
}

/// A loaded configuration and where it came from.
#[derive(Debug, Clone)]
pub struct LoadedConfig {
    /// The configuration.
    pub config: Config,
    /// The file it came from, or `None` for the built-in default.
    pub path: Option<PathBuf>,
    /// SHA-256 of the configuration text, recorded with each run.
    pub sha256: String,
}

impl Config {
    /// Loads `explicit` if given; else `./missive.toml` if present; else the built-in default.
    pub fn load(explicit: Option<&Path>) -> Result<LoadedConfig, ConfigError> {
        let path = match explicit {
            Some(path) => Some(path.to_owned()),
            None => Some(PathBuf::from("missive.toml")).filter(|p| p.is_file()),
        };
        let text = match &path {
            Some(path) => std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
                path: path.clone(),
                source,
            })?,
            None => BUILT_IN.to_owned(),
        };
        let shown = path.clone().unwrap_or_else(|| PathBuf::from("built-in"));
        let config = Config::parse(&text).map_err(|(key, message)| ConfigError::Invalid {
            path: shown,
            key,
            message,
        })?;
        Ok(LoadedConfig {
            config,
            path,
            sha256: hex(&Sha256::digest(text.as_bytes())),
        })
    }

    /// Parses configuration text; on failure returns the key path and the message.
    pub fn parse(text: &str) -> Result<Config, (String, String)> {
        let deserializer = toml::de::Deserializer::parse(text)
            .map_err(|err| ("(file)".to_owned(), one_line(&err.to_string())))?;
        let config: Config = serde_path_to_error::deserialize(deserializer).map_err(|err| {
            let key = err.path().to_string();
            (key, one_line(&err.into_inner().to_string()))
        })?;
        config.check()?;
        Ok(config)
    }

    /// Meaning checks serde cannot express.
    fn check(&self) -> Result<(), (String, String)> {
        let fail = |key: &str, message: &str| Err((key.to_owned(), message.to_owned()));
        let policy = &self.policy;
        if policy.review_window_days == 0 {
            return fail("policy.review_window_days", "must be at least 1");
        }
        if policy.minimum_amount.is_negative() {
            return fail("policy.minimum_amount", "must not be negative");
        }
        if policy.interest_rate_per_month.is_sign_negative()
            || policy.interest_rate_per_month > Decimal::ONE
        {
            return fail(
                "policy.interest_rate_per_month",
                "must be a fraction between 0 and 1 (0.01 is 1% a month)",
            );
        }
        if policy.collection_limit_years == 0 || policy.collection_limit_years > 100 {
            return fail("policy.collection_limit_years", "must be between 1 and 100");
        }
        if policy.excess_refund_limit_years > 100 {
            return fail("policy.excess_refund_limit_years", "must be at most 100");
        }
        if let Some((code, _)) = policy
            .tax_type_labels
            .iter()
            .find(|(code, label)| code.trim().is_empty() || label.trim().is_empty())
        {
            return Err((
                format!("policy.tax_type_labels.{code}"),
                "a tax type and its label must not be empty".to_owned(),
            ));
        }
        if let Some(code) = policy
            .offsetable_tax_types
            .iter()
            .find(|code| !policy.tax_type_labels.contains_key(*code))
        {
            return Err((
                "policy.offsetable_tax_types".to_owned(),
                format!("`{code}` has no label in `policy.tax_type_labels`"),
            ));
        }
        crate::translations::check(self)?;
        let email = &self.email;
        if email.from.parse::<lettre::message::Mailbox>().is_err() {
            return fail(
                "email.from",
                "must be a mailbox: `Name <user@host>` or `user@host`",
            );
        }
        if email.reply_to.parse::<lettre::message::Mailbox>().is_err() {
            return fail(
                "email.reply_to",
                "must be a mailbox: `Name <user@host>` or `user@host`",
            );
        }
        if email.pool_size == 0 || email.pool_size > 64 {
            return fail("email.pool_size", "must be between 1 and 64");
        }
        if !(email.rate_per_second.is_finite() && email.rate_per_second > 0.0) {
            return fail("email.rate_per_second", "must be a positive number");
        }
        if email.max_retries > 20 {
            return fail("email.max_retries", "must be at most 20");
        }
        if email.timeout_seconds == 0 {
            return fail("email.timeout_seconds", "must be at least 1");
        }
        if email.password_env.is_empty() && email.user.is_some() {
            return fail(
                "email.password_env",
                "must name an environment variable when `user` is set",
            );
        }
        self.ledger.check()?;
        self.mail.check()
    }
}

impl MailConfig {
    /// Meaning checks of the `[mail]` table: digit fields of the right length, ranges that
    /// are ordered and fit their digits.
    fn check(&self) -> Result<(), (String, String)> {
        let fail = |key: &str, message: String| Err((format!("mail.{key}"), message));
        let digits = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit());
        if !digits(&self.barcode_id)
            || self.barcode_id.len() != 2
            || self.barcode_id.as_bytes()[1] > b'4'
        {
            return fail(
                "barcode_id",
                "must be 2 digits, the second 0 to 4".to_owned(),
            );
        }
        if !digits(&self.mailer_id) || !matches!(self.mailer_id.len(), 6 | 9) {
            return fail("mailer_id", "must be 6 or 9 digits".to_owned());
        }
        for (key, value) in [
            ("service_type_first_class", &self.service_type_first_class),
            ("service_type_certified", &self.service_type_certified),
        ] {
            if !digits(value) || value.len() != 3 {
                return fail(key, "must be 3 digits".to_owned());
            }
        }
        let serial_max = if self.mailer_id.len() == 6 {
            999_999_999
        } else {
            999_999
        };
        if self.serial_last > serial_max {
            return fail(
                "serial_last",
                format!(
                    "must be at most {serial_max} with a {}-digit mailer id",
                    self.mailer_id.len()
                ),
            );
        }
        if self.serial_first > self.serial_last {
            return fail("serial_first", "must not be after serial_last".to_owned());
        }
        if !digits(&self.certified_prefix) || self.certified_prefix.len() > 18 {
            return fail("certified_prefix", "must be 1 to 18 digits".to_owned());
        }
        let width = 19 - self.certified_prefix.len() as u32;
        if u128::from(self.certified_last) >= 10u128.pow(width) {
            return fail(
                "certified_last",
                format!("must fit in {width} digits after the prefix"),
            );
        }
        if self.certified_first > self.certified_last {
            return fail(
                "certified_first",
                "must not be after certified_last".to_owned(),
            );
        }
        if self.batch_size == 0 {
            return fail("batch_size", "must be at least 1".to_owned());
        }
        Ok(())
    }
}

impl Config {
    /// The holiday calendar this configuration describes.
    pub fn holiday_calendar(&self) -> HolidayCalendar {
        HolidayCalendar::new(
            self.calendar.federal_holidays,
            &self.calendar.state_holidays,
            self.calendar.closures.iter().copied(),
        )
    }
}

/// Lowercase hex of a digest.
pub fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// TOML errors span several lines (a source excerpt); keep them on one.
fn one_line(message: &str) -> String {
    message
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('|') && !l.starts_with('^'))
        .collect::<Vec<_>>()
        .join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn built_in_configuration_parses() {
        let config = Config::parse(BUILT_IN).expect("built-in config is valid");
        assert_eq!(config.policy.review_window_days, 60);
        assert_eq!(config.policy.minimum_amount.plain(), "25.00");
        assert_eq!(config.policy.interest_rate_per_month.to_string(), "0.01");
        assert_eq!(config.contacts.bankruptcy.phone, "860-297-5921");
        assert_eq!(config.contacts.collections.fax, "860-297-5843");
        assert!(config.review.require_approval);
        assert_eq!(config.policy.offsetable_tax_types, ["individual_income"]);
        assert!(config.policy.is_offsetable("individual_income"));
        assert!(!config.policy.is_offsetable("sales_use"));
    }

    #[test]
    fn offsetable_tax_types_default_to_income_tax_and_need_labels() {
        let text = BUILT_IN.replace("offsetable_tax_types = [\"individual_income\"]\n", "");
        let config = Config::parse(&text).expect("the key is optional");
        assert_eq!(config.policy.offsetable_tax_types, ["individual_income"]);
        let text = BUILT_IN.replace(
            "offsetable_tax_types = [\"individual_income\"]",
            "offsetable_tax_types = [\"individual_income\", \"estate\"]",
        );
        let (key, message) = Config::parse(&text).expect_err("estate has no label");
        assert_eq!(key, "policy.offsetable_tax_types");
        assert!(message.contains("estate"), "{message}");
        let text = BUILT_IN.replace("withholding = \"Withholding tax\"", "withholding = \" \"");
        let (key, _) = Config::parse(&text).expect_err("blank label");
        assert_eq!(key, "policy.tax_type_labels.withholding");
    }

    #[test]
    fn review_settings_are_required() {
        let text = BUILT_IN.replace("require_approval = true", "");
        let (key, message) = Config::parse(&text).expect_err("must fail");
        assert_eq!(key, "review");
        assert!(message.contains("require_approval"), "{message}");
        let text = BUILT_IN.replace("require_approval = true", "require_approval = \"yes\"");
        let (key, _) = Config::parse(&text).expect_err("must fail");
        assert_eq!(key, "review.require_approval");
    }

    #[test]
    fn a_missing_key_is_named() {
        let text = BUILT_IN.replace("minimum_amount = \"25.00\"\n", "");
        let (key, message) = Config::parse(&text).expect_err("must fail");
        assert_eq!(key, "policy");
        assert!(message.contains("minimum_amount"), "{message}");
    }

    #[test]
    fn an_unknown_or_mistyped_key_is_named() {
        let text = BUILT_IN.replace(
            "review_window_days = 60",
            "review_window_days = 60\nreview_windows = 3",
        );
        let (key, message) = Config::parse(&text).expect_err("must fail");
        assert!(key.starts_with("policy"), "{key}");
        assert!(message.contains("review_windows"), "{message}");

        let text = BUILT_IN.replace("minimum_amount = \"25.00\"", "minimum_amount = 25.0");
        let (key, _) = Config::parse(&text).expect_err("must fail");
        assert_eq!(key, "policy.minimum_amount");

        let text = BUILT_IN.replace("\"good_friday\"", "\"easter_monday\"");
        let (key, _) = Config::parse(&text).expect_err("must fail");
        assert!(key.starts_with("calendar.state_holidays"), "{key}");
    }

    #[test]
    fn letter_texts_are_required_and_named() {
        let config = Config::parse(BUILT_IN).expect("built-in config is valid");
        assert!(config.statements.legal_authority.contains("6402(e)"));
        assert_eq!(
            config
                .titles
                .of(LetterKind::ReviewOutcome, Some(Variant::Reversed)),
            config.titles.review_outcome_reversed
        );
        for (line, table, key) in [
            ("records_access = ", "statements", "records_access"),
            ("payment_agreement = ", "statements", "payment_agreement"),
            ("legal_authority = ", "statements", "legal_authority"),
            ("bankruptcy_filing = ", "statements", "bankruptcy_filing"),
            ("late_filers = ", "statements", "late_filers"),
            ("coupon_note = ", "payments", "coupon_note"),
            ("unit_role = ", "contacts.review", "unit_role"),
            (
                "review_outcome_reduced = ",
                "titles",
                "review_outcome_reduced",
            ),
        ] {
            // The English text (first), then its Spanish translation (`[es…]`, second).
            for (nth, table) in [(0, table.to_owned()), (1, format!("es.{table}"))] {
                let mut seen = 0;
                let text: String = BUILT_IN
                    .lines()
                    .filter(|l| {
                        let hit = l.starts_with(line);
                        seen += usize::from(hit);
                        !(hit && seen == nth + 1)
                    })
                    .map(|l| format!("{l}\n"))
                    .collect();
                assert_ne!(text.len(), BUILT_IN.len(), "{line}");
                let (got, message) = Config::parse(&text).expect_err(line);
                assert_eq!(got, table, "{line}");
                assert!(message.contains(key), "{message}");
            }
        }
    }

    #[test]
    fn closures_take_toml_dates_or_strings() {
        let text = BUILT_IN.replace("closures = []", "closures = [2026-12-24, \"2026-12-31\"]");
        let config = Config::parse(&text).expect("closures parse");
        let calendar = config.holiday_calendar();
        let d = |s: &str| crate::load::parse_iso_date(s).expect("date");
        assert!(calendar.is_holiday(d("2026-12-24")));
        assert!(calendar.is_holiday(d("2026-12-31")));
        let text = BUILT_IN.replace("closures = []", "closures = [\"2026-12-32\"]");
        let (key, _) = Config::parse(&text).expect_err("must fail");
        assert!(key.starts_with("calendar.closures"), "{key}");
    }

    #[test]
    fn the_mail_table_is_checked() {
        let config = Config::parse(BUILT_IN).expect("built-in config is valid");
        assert_eq!(config.mail.batch_size, 500);
        assert_eq!(config.mail.mailer_id.len(), 6);
        let text = BUILT_IN.replace("batch_size = 500\n", "");
        let (key, message) = Config::parse(&text).expect_err("must fail");
        assert_eq!(key, "mail");
        assert!(message.contains("batch_size"), "{message}");
        let cases = [
            (
                "barcode_id = \"00\"",
                "barcode_id = \"05\"",
                "mail.barcode_id",
            ),
            ("mailer_id = \"", "mailer_id = \"1", "mail.mailer_id"),
            (
                "service_type_certified = \"",
                "service_type_certified = \"1",
                "mail.service_type_certified",
            ),
            (
                "serial_last = 999999999",
                "serial_last = 1000000000",
                "mail.serial_last",
            ),
            (
                "serial_first = 1\n",
                "serial_first = 1000000000\n",
                "mail.serial_first",
            ),
            (
                "certified_last = 99999999",
                "certified_last = 100000000000",
                "mail.certified_last",
            ),
            ("batch_size = 500", "batch_size = 0", "mail.batch_size"),
        ];
        for (from, to, key) in cases {
            assert!(BUILT_IN.contains(from), "{from}");
            let (got, _) = Config::parse(&BUILT_IN.replacen(from, to, 1)).expect_err(to);
            assert_eq!(got, key, "{to}");
        }
    }

    #[test]
    fn nonsense_policy_is_refused() {
        let text = BUILT_IN.replace(
            "interest_rate_per_month = \"0.01\"",
            "interest_rate_per_month = \"1.5\"",
        );
        let (key, _) = Config::parse(&text).expect_err("must fail");
        assert_eq!(key, "policy.interest_rate_per_month");
        let (key, _) = Config::parse("not [toml").expect_err("must fail");
        assert_eq!(key, "(file)");
    }

    #[test]
    fn the_email_table_is_required_and_checked() {
        let config = Config::parse(BUILT_IN).expect("built-in config is valid");
        assert!(config.email.attach_pdf);
        assert_eq!(config.email.tls, TlsMode::Starttls);
        assert_eq!(config.email.user, None);

        let text = BUILT_IN.replace("attach_pdf = true\n", "");
        let (key, message) = Config::parse(&text).expect_err("must fail");
        assert_eq!(key, "email");
        assert!(message.contains("attach_pdf"), "{message}");

        let text = BUILT_IN.replace("tls = \"starttls\"", "tls = \"ssl\"");
        let (key, _) = Config::parse(&text).expect_err("must fail");
        assert_eq!(key, "email.tls");

        let text = BUILT_IN.replace("rate_per_second = 20.0", "rate_per_second = 0.0");
        let (key, _) = Config::parse(&text).expect_err("must fail");
        assert_eq!(key, "email.rate_per_second");

        let text = BUILT_IN.replace("pool_size = 4", "pool_size = 0");
        let (key, _) = Config::parse(&text).expect_err("must fail");
        assert_eq!(key, "email.pool_size");

        let text = BUILT_IN.replace(
            "reply_to = \"drs@po.state.ct.us\"",
            "reply_to = \"not an address\"",
        );
        let (key, _) = Config::parse(&text).expect_err("must fail");
        assert_eq!(key, "email.reply_to");

        // The password itself is never a configuration key.
        let text = BUILT_IN.replace("password_env = ", "password = \"hunter2\"\npassword_env = ");
        let (key, message) = Config::parse(&text).expect_err("must fail");
        assert!(key.starts_with("email"), "{key}");
        assert!(message.contains("password"), "{message}");

        // Nor for the ledger: neither as a key nor inside the URL.
        let text = format!("{BUILT_IN}\n[ledger]\npassword = \"hunter2\"\n");
        let (key, message) = Config::parse(&text).expect_err("must fail");
        assert_eq!(key, "ledger.password");
        assert!(message.contains("ledger.password_env"), "{message}");
        let text = format!("{BUILT_IN}\n[ledger]\nurl = \"postgres://m:hunter2@h:5432/db\"\n");
        let (key, message) = Config::parse(&text).expect_err("must fail");
        assert_eq!(key, "ledger.url");
        assert!(!message.contains("hunter2"), "{message}");
        let text = format!(
            "{BUILT_IN}\n[ledger]\nurl = \"postgres://m@h:5432/db\"\npassword_env = \"PGPW\"\n"
        );
        let config = Config::parse(&text).expect("a ledger URL");
        assert_eq!(config.ledger.url.as_deref(), Some("postgres://m@h:5432/db"));
        assert!(Config::parse(BUILT_IN).expect("built-in").ledger.is_unset());
    }
}
