//! Business-day calendar and month arithmetic for notice deadlines.
//!
//! A notice's response deadline is the mail date plus a number of calendar days (day 1 is the
//! day after mailing); a deadline that falls on a Saturday, Sunday or legal holiday moves
//! *forward* to the next business day, never back (Conn. Gen. Stat. 12-39a). The default
//! calendar is the eleven federal holidays of 5 U.S.C. 6103(a) plus Connecticut's Lincoln's
//! Birthday and Good Friday. A fixed-date holiday falling on a Saturday is observed on the
//! Friday before, one on a Sunday on the Monday after (CGS 1-4), and that observed day *is* the
//! holiday; the Saturday itself is only a weekend day. New Year's Day on a Saturday is
//! therefore observed on December 31 of the previous year.
//!
//! Interest runs "per month or fraction of a month": [`months_between`] implements the spec's
//! `months(a, b)` on top of [`add_months`], which clamps to the last day of the target month
//! and is always computed from the start date (Jan 31 + 2 months = Mar 31, not Mar 28).
//!
//! Holiday lookups are hot (many accounts per second), so each [`HolidayCalendar`] precomputes
//! a bitmap of non-business holidays for 1900..=2200 and only evaluates the rules on the fly
//! for dates outside that range. Nothing here panics for any date chrono can represent; at
//! the very ends of chrono's range results saturate as documented on each function.

use std::collections::BTreeSet;

use chrono::{Datelike, Days, Months, NaiveDate, Weekday};

/// Parses a date written strictly as `YYYY-MM-DD` (four-digit year, two-digit month and
/// day): the only date form missive accepts, in account files, templates' data and on the
/// command line alike.
pub fn parse_iso_date(text: &str) -> Option<NaiveDate> {
    let b = text.as_bytes();
    let shape_ok = b.len() == 10
        && b[4] == b'-'
        && b[7] == b'-'
        && b.iter()
            .enumerate()
            .all(|(i, c)| i == 4 || i == 7 || c.is_ascii_digit());
    if !shape_ok {
        return None;
    }
    NaiveDate::parse_from_str(text, "%Y-%m-%d").ok()
}

/// First year whose holidays are precomputed into the lookup bitmap.
const FIRST_CACHED_YEAR: i32 = 1900;
/// Last year whose holidays are precomputed into the lookup bitmap.
const LAST_CACHED_YEAR: i32 = 2200;
/// Bitmap slots per year (indexed by ordinal day, so leap years fit).
const SLOTS_PER_YEAR: usize = 366;
/// Name listed by [`HolidayCalendar::holidays_in`] for configured closure dates.
const CLOSURE_NAME: &str = "Agency closure";

/// A built-in state holiday rule that configuration can switch on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Deserialize, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum StateHoliday {
    /// Lincoln's Birthday, February 12 (shifted off weekends like federal fixed-date holidays).
    LincolnsBirthday,
    /// Good Friday, two days before Gregorian Easter Sunday (never shifted: always a Friday).
    GoodFriday,
}

impl StateHoliday {
    /// The display name and date rule for this holiday.
    fn rule(self) -> (&'static str, Rule) {
        match self {
            StateHoliday::LincolnsBirthday => ("Lincoln's Birthday", Rule::Fixed(2, 12)),
            StateHoliday::GoodFriday => ("Good Friday", Rule::GoodFriday),
        }
    }
}

/// How a holiday's date is determined for a given year.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Rule {
    /// A fixed (month, day); Saturday shifts to the Friday before, Sunday to the Monday after.
    Fixed(u32, u32),
    /// The `n`th given weekday of a month (never on a weekend, so never shifted).
    Nth(u32, Weekday, u8),
    /// The last Monday of May (Memorial Day).
    LastMondayOfMay,
    /// Easter Sunday minus two days.
    GoodFriday,
}

/// The eleven holidays of 5 U.S.C. 6103(a), with the statute's names.
const FEDERAL: [(&str, Rule); 11] = [
    ("New Year's Day", Rule::Fixed(1, 1)),
    (
        "Birthday of Martin Luther King, Jr.",
        Rule::Nth(1, Weekday::Mon, 3),
    ),
    ("Washington's Birthday", Rule::Nth(2, Weekday::Mon, 3)),
    ("Memorial Day", Rule::LastMondayOfMay),
    ("Juneteenth National Independence Day", Rule::Fixed(6, 19)),
    ("Independence Day", Rule::Fixed(7, 4)),
    ("Labor Day", Rule::Nth(9, Weekday::Mon, 1)),
    ("Columbus Day", Rule::Nth(10, Weekday::Mon, 2)),
    ("Veterans Day", Rule::Fixed(11, 11)),
    ("Thanksgiving Day", Rule::Nth(11, Weekday::Thu, 4)),
    ("Christmas Day", Rule::Fixed(12, 25)),
];

impl Rule {
    /// The observed date of this rule's holiday *for* `year` (which may fall in `year - 1`:
    /// New Year's Day on a Saturday), and whether it was shifted off a weekend.
    /// `None` only when the date is outside chrono's range.
    fn observe(self, year: i32) -> Option<(NaiveDate, bool)> {
        match self {
            Rule::Fixed(month, day) => {
                let date = NaiveDate::from_ymd_opt(year, month, day)?;
                match date.weekday() {
                    Weekday::Sat => Some((date.pred_opt()?, true)),
                    Weekday::Sun => Some((date.succ_opt()?, true)),
                    _ => Some((date, false)),
                }
            }
            Rule::Nth(month, weekday, n) => {
                NaiveDate::from_weekday_of_month_opt(year, month, weekday, n).map(|d| (d, false))
            }
            Rule::LastMondayOfMay => {
                let may31 = NaiveDate::from_ymd_opt(year, 5, 31)?;
                let back = u64::from(may31.weekday().num_days_from_monday());
                may31.checked_sub_days(Days::new(back)).map(|d| (d, false))
            }
            Rule::GoodFriday => easter_sunday(year)?
                .checked_sub_days(Days::new(2))
                .map(|d| (d, false)),
        }
    }
}

/// Gregorian Easter Sunday (the anonymous Gregorian / Meeus-Jones-Butcher computus).
///
/// Euclidean division keeps every intermediate in range for proleptic negative years too, so
/// the result is always a day in March 22..=April 25; `None` only if chrono cannot hold `year`.
fn easter_sunday(year: i32) -> Option<NaiveDate> {
    let a = year.rem_euclid(19);
    let b = year.div_euclid(100);
    let c = year.rem_euclid(100);
    let (d, e) = (b.div_euclid(4), b.rem_euclid(4));
    let f = (b + 8).div_euclid(25);
    let g = (b - f + 1).div_euclid(3);
    let h = (19 * a + b - d - g + 15).rem_euclid(30);
    let (i, k) = (c / 4, c % 4);
    let l = (32 + 2 * e + 2 * i - h - k).rem_euclid(7);
    let m = (a + 11 * h + 22 * l) / 451;
    let n = h + l - 7 * m + 114;
    NaiveDate::from_ymd_opt(
        year,
        u32::try_from(n / 31).ok()?,
        u32::try_from(n % 31 + 1).ok()?,
    )
}

/// Bitmap slot of `date`, if it lies in the precomputed year range.
fn slot(date: NaiveDate) -> Option<usize> {
    let offset = usize::try_from(date.year().checked_sub(FIRST_CACHED_YEAR)?).ok()?;
    (date.year() <= LAST_CACHED_YEAR).then(|| offset * SLOTS_PER_YEAR + date.ordinal0() as usize)
}

/// The days the agency counts as non-business days besides weekends: a configurable set of
/// holiday rules (federal, built-in state ones) plus explicit closure dates.
///
/// Construct once and share; lookups inside 1900..=2200 are a single bitmap probe.
#[derive(Debug, Clone)]
pub struct HolidayCalendar {
    /// Holiday rules in force, each with its display name (no duplicates).
    rules: Vec<(&'static str, Rule)>,
    /// Extra closure dates, taken as given (never shifted).
    closures: BTreeSet<NaiveDate>,
    /// One bit per (cached year, ordinal day): set when the day is a holiday or closure.
    cached: Box<[u64]>,
}

impl HolidayCalendar {
    /// Builds a calendar. `federal`: whether the eleven 5 U.S.C. 6103(a) holidays apply;
    /// `state`: extra built-in rules (duplicates ignored); `closures`: extra dates the agency
    /// is closed (taken as given, never shifted).
    pub fn new(
        federal: bool,
        state: &[StateHoliday],
        closures: impl IntoIterator<Item = NaiveDate>,
    ) -> Self {
        let mut rules: Vec<(&'static str, Rule)> = if federal {
            FEDERAL.to_vec()
        } else {
            Vec::new()
        };
        for holiday in state {
            let rule = holiday.rule();
            if !rules.contains(&rule) {
                rules.push(rule);
            }
        }
        let closures: BTreeSet<NaiveDate> = closures.into_iter().collect();

        let years = (LAST_CACHED_YEAR - FIRST_CACHED_YEAR + 1) as usize;
        let mut cached = vec![0u64; (years * SLOTS_PER_YEAR).div_ceil(64)].into_boxed_slice();
        let mut mark = |date: NaiveDate| {
            if let Some(i) = slot(date) {
                cached[i / 64] |= 1 << (i % 64);
            }
        };
        // Rules for LAST + 1 can be observed in LAST (New Year's Day on a Saturday).
        for year in FIRST_CACHED_YEAR..=LAST_CACHED_YEAR + 1 {
            for (_, rule) in &rules {
                if let Some((date, _)) = rule.observe(year) {
                    mark(date);
                }
            }
        }
        closures.iter().copied().for_each(mark);
        HolidayCalendar {
            rules,
            closures,
            cached,
        }
    }

    /// Federal + Lincoln's Birthday + Good Friday, no closures (the Connecticut default).
    pub fn connecticut() -> Self {
        Self::new(
            true,
            &[StateHoliday::LincolnsBirthday, StateHoliday::GoodFriday],
            [],
        )
    }

    /// Every holiday whose observed date falls in `year`, sorted by date, with its name
    /// (e.g. "Independence Day (observed)" when shifted), closures included as
    /// "Agency closure". A closure on a date that is already a holiday is listed once, under
    /// the holiday's name. Years outside chrono's range yield an empty list.
    pub fn holidays_in(&self, year: i32) -> Vec<(NaiveDate, String)> {
        let mut out: Vec<(NaiveDate, String)> = Vec::new();
        for rule_year in [year.checked_sub(1), Some(year), year.checked_add(1)]
            .into_iter()
            .flatten()
        {
            for (name, rule) in &self.rules {
                if let Some((date, shifted)) = rule.observe(rule_year)
                    && date.year() == year
                {
                    let name = if shifted {
                        format!("{name} (observed)")
                    } else {
                        name.to_string()
                    };
                    out.push((date, name));
                }
            }
        }
        let rule_days = out.len();
        for &date in self.closures.iter().filter(|d| d.year() == year) {
            if !out[..rule_days].iter().any(|(d, _)| *d == date) {
                out.push((date, CLOSURE_NAME.to_string()));
            }
        }
        out.sort();
        out
    }

    /// Whether `date` is an (observed) holiday or a closure. A Saturday whose holiday is
    /// observed on Friday is not itself a holiday (it is still not a business day).
    pub fn is_holiday(&self, date: NaiveDate) -> bool {
        match slot(date) {
            Some(i) => self.cached[i / 64] >> (i % 64) & 1 == 1,
            None => self.closures.contains(&date) || self.is_rule_holiday_uncached(date),
        }
    }

    /// Evaluates the rules directly (no bitmap): used outside the precomputed range.
    fn is_rule_holiday_uncached(&self, date: NaiveDate) -> bool {
        // Dec 31 can be the observed New Year's Day of the following year.
        [Some(date.year()), date.year().checked_add(1)]
            .into_iter()
            .flatten()
            .any(|year| {
                self.rules
                    .iter()
                    .any(|(_, rule)| rule.observe(year).is_some_and(|(d, _)| d == date))
            })
    }

    /// Not a Saturday, Sunday or holiday: a day on which a deadline may fall.
    pub fn is_business_day(&self, date: NaiveDate) -> bool {
        !matches!(date.weekday(), Weekday::Sat | Weekday::Sun) && !self.is_holiday(date)
    }

    /// The first business day on or after `date` (deadlines move forward, never back).
    /// Saturates at `NaiveDate::MAX` if no later business day is representable.
    pub fn next_business_day_on_or_after(&self, date: NaiveDate) -> NaiveDate {
        let mut day = date;
        while !self.is_business_day(day) {
            match day.succ_opt() {
                Some(next) => day = next,
                None => return day,
            }
        }
        day
    }

    /// `from + days` calendar days (day 1 is the day after `from`), rolled forward to the
    /// next business day if that day is not one (CGS 12-39a). Saturates at `NaiveDate::MAX`.
    pub fn deadline(&self, from: NaiveDate, days: u32) -> NaiveDate {
        let due = from
            .checked_add_days(Days::new(u64::from(days)))
            .unwrap_or(NaiveDate::MAX);
        self.next_business_day_on_or_after(due)
    }
}

/// `date + n` months, clamped to the last day of the target month (Jan 31 + 1 = Feb 28/29);
/// None only on chrono overflow.
pub fn add_months(date: NaiveDate, n: u32) -> Option<NaiveDate> {
    date.checked_add_months(Months::new(n))
}

/// `date - n` months, clamped the same way (Mar 31 - 1 = Feb 28/29); None only on overflow.
pub fn sub_months(date: NaiveDate, n: u32) -> Option<NaiveDate> {
    date.checked_sub_months(Months::new(n))
}

/// The spec's `months(a, b)` for "per month or fraction of a month" interest: 0 if `b <= a`,
/// else the least `k >= 1` with `add_months(a, k) >= b`. Constant time.
///
/// If that `k` would put `a + k` months past `NaiveDate::MAX`, the mathematical answer is
/// still returned (it is a plain month count).
pub fn months_between(a: NaiveDate, b: NaiveDate) -> u32 {
    if b <= a {
        return 0;
    }
    // Whole calendar months from a's month to b's month; b > a so this is >= 0, and chrono's
    // ~524 000-year range keeps it far below u32::MAX.
    let diff = (i64::from(b.year()) - i64::from(a.year())) * 12 + i64::from(b.month())
        - i64::from(a.month());
    let d = u32::try_from(diff).unwrap_or(u32::MAX);
    // a + d months lands in b's month (representable: chrono's range is whole years);
    // a + (d - 1) months is in an earlier month (< b) and a + (d + 1) in a later one (> b).
    if d >= 1 && add_months(a, d).is_some_and(|x| x >= b) {
        d
    } else {
        d.saturating_add(1)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Parses an ISO date in test data.
    fn d(iso: &str) -> NaiveDate {
        iso.parse().expect("valid test date")
    }

    fn list(items: &[(&str, &str)]) -> Vec<(NaiveDate, String)> {
        items
            .iter()
            .map(|&(day, name)| (d(day), name.to_string()))
            .collect()
    }

    fn ct() -> HolidayCalendar {
        HolidayCalendar::connecticut()
    }

    #[test]
    fn holidays_2026() {
        let expected = list(&[
            ("2026-01-01", "New Year's Day"),
            ("2026-01-19", "Birthday of Martin Luther King, Jr."),
            ("2026-02-12", "Lincoln's Birthday"),
            ("2026-02-16", "Washington's Birthday"),
            ("2026-04-03", "Good Friday"),
            ("2026-05-25", "Memorial Day"),
            ("2026-06-19", "Juneteenth National Independence Day"),
            ("2026-07-03", "Independence Day (observed)"),
            ("2026-09-07", "Labor Day"),
            ("2026-10-12", "Columbus Day"),
            ("2026-11-11", "Veterans Day"),
            ("2026-11-26", "Thanksgiving Day"),
            ("2026-12-25", "Christmas Day"),
        ]);
        assert_eq!(ct().holidays_in(2026), expected);
    }

    #[test]
    fn holidays_2027() {
        let expected = list(&[
            ("2027-01-01", "New Year's Day"),
            ("2027-01-18", "Birthday of Martin Luther King, Jr."),
            ("2027-02-12", "Lincoln's Birthday"),
            ("2027-02-15", "Washington's Birthday"),
            ("2027-03-26", "Good Friday"),
            ("2027-05-31", "Memorial Day"),
            (
                "2027-06-18",
                "Juneteenth National Independence Day (observed)",
            ),
            ("2027-07-05", "Independence Day (observed)"),
            ("2027-09-06", "Labor Day"),
            ("2027-10-11", "Columbus Day"),
            ("2027-11-11", "Veterans Day"),
            ("2027-11-25", "Thanksgiving Day"),
            ("2027-12-24", "Christmas Day (observed)"),
            ("2027-12-31", "New Year's Day (observed)"),
        ]);
        assert_eq!(ct().holidays_in(2027), expected);
    }

    #[test]
    fn holidays_2028() {
        // Jan 1 2028 is a Saturday: observed Dec 31 2027, so 2028 has no New Year's entry.
        let expected = list(&[
            ("2028-01-17", "Birthday of Martin Luther King, Jr."),
            ("2028-02-11", "Lincoln's Birthday (observed)"),
            ("2028-02-21", "Washington's Birthday"),
            ("2028-04-14", "Good Friday"),
            ("2028-05-29", "Memorial Day"),
            ("2028-06-19", "Juneteenth National Independence Day"),
            ("2028-07-04", "Independence Day"),
            ("2028-09-04", "Labor Day"),
            ("2028-10-09", "Columbus Day"),
            ("2028-11-10", "Veterans Day (observed)"),
            ("2028-11-23", "Thanksgiving Day"),
            ("2028-12-25", "Christmas Day"),
        ]);
        let cal = ct();
        assert_eq!(cal.holidays_in(2028), expected);
        for (day, _) in &expected {
            assert!(cal.is_holiday(*day) && !cal.is_business_day(*day), "{day}");
        }
    }

    #[test]
    fn observed_shifts() {
        let cal = ct();
        // Saturday holidays: the Friday is the holiday, the Saturday only a weekend day.
        for (sat, fri) in [
            ("2026-07-04", "2026-07-03"),
            ("2027-12-25", "2027-12-24"),
            ("2028-02-12", "2028-02-11"),
            ("2027-06-19", "2027-06-18"),
            ("2022-01-01", "2021-12-31"),
        ] {
            assert!(cal.is_holiday(d(fri)) && !cal.is_holiday(d(sat)), "{sat}");
            assert!(!cal.is_business_day(d(sat)));
        }
        // Sunday holidays move to Monday: Lincoln's Birthday 2023 and 2034, July 4 2027.
        for (sun, mon) in [
            ("2023-02-12", "2023-02-13"),
            ("2034-02-12", "2034-02-13"),
            ("2027-07-04", "2027-07-05"),
        ] {
            assert!(cal.is_holiday(d(mon)) && !cal.is_holiday(d(sun)), "{sun}");
        }
        let lincoln = (d("2034-02-13"), "Lincoln's Birthday (observed)".to_string());
        assert!(cal.holidays_in(2034).contains(&lincoln));
        // New Year's Day 2022 (Saturday) is listed in 2021, not 2022.
        let new_year = (d("2021-12-31"), "New Year's Day (observed)".to_string());
        assert!(cal.holidays_in(2021).contains(&new_year));
        assert!(
            !cal.holidays_in(2022)
                .iter()
                .any(|(_, n)| n.contains("New Year"))
        );
        // The day after Thanksgiving is not a holiday by default.
        assert!(cal.is_business_day(d("2026-11-27")));
    }

    #[test]
    fn good_friday_dates() {
        let cal = HolidayCalendar::new(false, &[StateHoliday::GoodFriday], []);
        // Includes Easter's extremes (Mar 22 in 1818 and 2285, Apr 25 in 1943 and 2038),
        // inside and outside the precomputed range.
        let days = "1818-03-20 1943-04-23 1961-03-31 2000-04-21 2024-03-29 2025-04-18 \
                    2026-04-03 2027-03-26 2028-04-14 2038-04-23 2285-03-20";
        for day in days.split_whitespace() {
            assert_eq!(
                cal.holidays_in(d(day).year()),
                list(&[(day, "Good Friday")])
            );
            assert!(cal.is_holiday(d(day)));
        }
    }

    #[test]
    fn deadline_rolls() {
        let cal = ct();
        for (mailed, due) in [
            ("2026-12-01", "2027-02-01"), // Sat Jan 30 -> Mon Feb 1 (plain weekend)
            ("2026-09-27", "2026-11-27"), // Thanksgiving Thu Nov 26 -> Fri
            ("2027-10-26", "2027-12-27"), // Sat Dec 25 (Fri 24 observed) -> Mon Dec 27
            ("2027-11-01", "2028-01-03"), // Fri Dec 31 (New Year's observed) -> Mon Jan 3
            ("2026-02-02", "2026-04-06"), // Good Friday Apr 3 -> Mon Apr 6
            ("2026-01-05", "2026-03-06"), // Fri Mar 6 is a business day: stays
        ] {
            assert_eq!(cal.deadline(d(mailed), 60), d(due), "mailed {mailed}");
        }
        assert!(cal.is_holiday(d("2027-12-24")));
        // Lincoln's Birthday Fri Feb 12 2027 + weekend + Washington's Birthday -> Tue Feb 16.
        assert_eq!(cal.deadline(d("2026-12-14"), 60), d("2027-02-16"));
        // MLK weekend: Sat 2027-01-16 -> Tue 2027-01-19.
        assert_eq!(
            cal.next_business_day_on_or_after(d("2027-01-16")),
            d("2027-01-19")
        );
        assert_eq!(cal.deadline(d("2027-01-16"), 0), d("2027-01-19"));
        // Day 1 is the day after the mail date.
        assert_eq!(cal.deadline(d("2026-03-02"), 1), d("2026-03-03"));
    }

    #[test]
    fn closures_and_custom_calendars() {
        let closed = ["2027-02-01", "2027-02-02", "2026-12-25", "2300-06-01"].map(d);
        let states = [StateHoliday::LincolnsBirthday, StateHoliday::GoodFriday];
        let cal = HolidayCalendar::new(true, &states, closed);
        // Sat 2027-01-30 -> Mon Feb 1 closed, Tue Feb 2 closed -> Wed Feb 3.
        assert_eq!(cal.deadline(d("2026-12-01"), 60), d("2027-02-03"));
        let mut with_closures = ct().holidays_in(2027);
        with_closures.insert(2, (d("2027-02-01"), CLOSURE_NAME.to_string()));
        with_closures.insert(3, (d("2027-02-02"), CLOSURE_NAME.to_string()));
        assert_eq!(cal.holidays_in(2027), with_closures);
        // A closure on Christmas is listed once, as Christmas.
        assert_eq!(cal.holidays_in(2026), ct().holidays_in(2026));
        // Closures outside the precomputed range still count (Thu 2300-06-01).
        assert!(cal.is_holiday(d("2300-06-01")) && !cal.is_holiday(d("2300-06-02")));
        let closures_2300 = cal
            .holidays_in(2300)
            .into_iter()
            .filter(|(_, n)| n == CLOSURE_NAME);
        assert_eq!(closures_2300.count(), 1);

        // No holidays at all: only weekends roll.
        let bare = HolidayCalendar::new(false, &[], []);
        assert!(bare.holidays_in(2027).is_empty());
        assert_eq!(
            bare.next_business_day_on_or_after(d("2027-01-16")),
            d("2027-01-18")
        );
        assert!(bare.is_business_day(d("2026-07-03")) && bare.is_business_day(d("2026-11-26")));
        // State rules only (duplicates ignored).
        let state = HolidayCalendar::new(false, &[StateHoliday::GoodFriday; 2], []);
        assert_eq!(
            state.holidays_in(2026),
            list(&[("2026-04-03", "Good Friday")])
        );
        assert!(state.is_business_day(d("2026-01-19")));
        // Federal only: Lincoln's Birthday and Good Friday are business days.
        let federal = HolidayCalendar::new(true, &[], []);
        assert_eq!(federal.holidays_in(2027).len(), 12);
        assert!(federal.is_business_day(d("2027-02-12")));
        assert!(federal.is_business_day(d("2027-03-26")));
    }

    #[test]
    fn cache_matches_rules() {
        let cal = ct();
        for (start, end) in [("1899-12-01", "1901-01-31"), ("2199-12-01", "2201-01-31")] {
            for day in d(start).iter_days().take_while(|x| *x <= d(end)) {
                assert_eq!(
                    cal.is_holiday(day),
                    cal.is_rule_holiday_uncached(day),
                    "{day}"
                );
            }
        }
        // Over the whole cached range, the bitmap flags exactly the days holidays_in lists.
        for year in FIRST_CACHED_YEAR..=LAST_CACHED_YEAR {
            let listed: Vec<NaiveDate> = cal.holidays_in(year).into_iter().map(|x| x.0).collect();
            let year_days = d(&format!("{year}-01-01"))
                .iter_days()
                .take_while(|x| x.year() == year);
            let flagged: Vec<NaiveDate> = year_days.filter(|x| cal.is_holiday(*x)).collect();
            assert_eq!(listed, flagged, "{year}");
        }
        // Jan 1 2203 is a Saturday: observed Fri Dec 31 2202, outside the cached range.
        assert!(cal.is_holiday(d("2202-12-31")) && !cal.is_holiday(d("2203-01-03")));
    }

    #[test]
    fn months_between_cases() {
        for (a, b, expected) in [
            ("2024-01-31", "2024-02-29", 1),
            ("2024-01-31", "2024-03-01", 2),
            ("2023-01-31", "2023-02-28", 1),
            ("2024-02-29", "2025-02-28", 12),
            ("2024-02-29", "2025-03-01", 13),
            ("2024-05-17", "2024-05-17", 0),
            ("2024-05-17", "2024-05-16", 0),
            ("2024-05-17", "2024-05-18", 1),
            ("2024-12-31", "2025-01-01", 1),
            ("2024-01-15", "2024-02-15", 1),
            ("2024-01-15", "2024-02-16", 2),
            // By hand: Apr 18 2022 + 57 months = Jan 18 2027 < Feb 1 2027 <= Feb 18 2027.
            ("2022-04-18", "2027-02-01", 58),
        ] {
            assert_eq!(months_between(d(a), d(b)), expected, "{a} {b}");
        }
    }

    #[test]
    fn months_between_matches_definition() {
        fn brute(a: NaiveDate, b: NaiveDate) -> u32 {
            if b <= a {
                return 0;
            }
            let reaches = |k: &u32| add_months(a, *k).is_none_or(|x| x >= b);
            (1..).find(reaches).expect("some k")
        }
        // Every start day around Feb/leap-day month ends, against ends up to ~26 months on.
        let mut pairs = 0;
        for a in d("2023-12-25").iter_days().take(100) {
            for b in (a - Days::new(3)).iter_days().take(800).step_by(3) {
                assert_eq!(months_between(a, b), brute(a, b), "{a} {b}");
                pairs += 1;
            }
        }
        // Pseudo-random pairs over four centuries (a 64-bit LCG).
        let mut state: u64 = 0x9E37_79B9_7F4A_7C15;
        for _ in 0..20_000 {
            state = state
                .wrapping_mul(6_364_136_223_846_793_005)
                .wrapping_add(1);
            let a = d("1700-01-01") + Days::new((state >> 33) % 146_097);
            let b = a + Days::new((state >> 13) % 1_500);
            assert_eq!(months_between(a, b), brute(a, b), "{a} {b}");
            pairs += 1;
        }
        assert!(pairs > 45_000);
    }

    #[test]
    fn month_arithmetic_clamps() {
        for (from, n, added, subtracted) in [
            ("2024-01-31", 1, "2024-02-29", "2023-12-31"),
            ("2023-01-31", 1, "2023-02-28", "2022-12-31"),
            ("2024-01-31", 2, "2024-03-31", "2023-11-30"),
            ("2024-03-31", 1, "2024-04-30", "2024-02-29"),
            ("2023-03-31", 1, "2023-04-30", "2023-02-28"),
            ("2024-02-29", 120, "2034-02-28", "2014-02-28"),
            ("2024-02-29", 48, "2028-02-29", "2020-02-29"),
            ("2024-10-31", 4, "2025-02-28", "2024-06-30"),
            ("2024-05-10", 0, "2024-05-10", "2024-05-10"),
        ] {
            assert_eq!(add_months(d(from), n), Some(d(added)), "{from} + {n}");
            assert_eq!(sub_months(d(from), n), Some(d(subtracted)), "{from} - {n}");
        }
    }

    #[test]
    fn extreme_dates_do_not_panic() {
        let cal = ct();
        let (min, max) = (NaiveDate::MIN, NaiveDate::MAX);
        let (min1, max1) = (
            min.succ_opt().expect("min+1"),
            max.pred_opt().expect("max-1"),
        );
        for day in [min, max, min1, max1] {
            let _ = (cal.is_holiday(day), cal.is_business_day(day));
            assert!(cal.next_business_day_on_or_after(day) >= day);
            assert!(cal.deadline(day, u32::MAX) >= day && cal.deadline(day, 60) >= day);
            let _ = (add_months(day, u32::MAX), sub_months(day, u32::MAX));
        }
        assert_eq!(cal.deadline(max, 60), max);
        assert_eq!(cal.next_business_day_on_or_after(max), max);
        assert_eq!((add_months(max, 1), sub_months(min, 1)), (None, None));
        for year in [
            i32::MIN,
            i32::MAX,
            min.year(),
            max.year(),
            min.year() - 1,
            max.year() + 1,
        ] {
            let _ = cal.holidays_in(year);
        }
        assert!(!cal.holidays_in(max.year()).is_empty() && !cal.holidays_in(min.year()).is_empty());
        assert!(cal.holidays_in(i32::MAX).is_empty());
        let whole_range = (max.year() - min.year()) as u32 * 12 + 12;
        assert_eq!(months_between(min, max), whole_range);
        assert_eq!(
            (months_between(max, min), months_between(max1, max)),
            (0, 1)
        );
        assert_eq!(months_between(min, min1), 1);
    }

    #[test]
    fn state_holiday_serde_names() {
        let all = [StateHoliday::LincolnsBirthday, StateHoliday::GoodFriday];
        let json = serde_json::to_string(&all).expect("serialize");
        assert_eq!(json, r#"["lincolns_birthday","good_friday"]"#);
        let back: Vec<StateHoliday> = serde_json::from_str(&json).expect("deserialize");
        assert_eq!(back, all);
    }
}
