//! Money: exact dollars and cents.
//!
//! Every amount in missive is a [`Money`], a `rust_decimal::Decimal` that is known to hold
//! at most two decimal places and to lie within [`Money::MAX`]. Floats never appear. Input
//! amounts are JSON *strings* (`"1234.50"`), parsed strictly by [`Money::parse`]; output
//! amounts print with exactly two decimals ([`Money::plain`], `1234.50`) in data and with a
//! dollar sign and thousands separators ([`Money::dollars`], `$1,234.50`) in letters.

use std::fmt;
use std::iter::Sum;
use std::ops::{Add, Sub};
use std::str::FromStr;

use rust_decimal::{Decimal, RoundingStrategy};
use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// An exact amount of dollars and cents (two decimal places, possibly negative in
/// intermediate arithmetic, bounded by [`Money::MAX`] on input).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct Money(Decimal);

/// Why an amount string was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MoneyError {
    /// Not of the form `123`, `123.4` or `123.45` (optionally with a leading `-`).
    #[error("`{0}` is not an amount: write dollars and cents as a string like \"1234.50\"")]
    Syntax(String),
    /// More than two decimal places: sub-cent amounts never appear in a ledger.
    #[error("`{0}` has more than two decimal places")]
    TooPrecise(String),
    /// Beyond [`Money::MAX`]: almost certainly a data error, and it keeps sums overflow-free.
    #[error("`{0}` is out of range (at most 999,999,999,999.99)")]
    OutOfRange(String),
}

impl Money {
    /// Zero dollars.
    pub const ZERO: Money = Money(Decimal::ZERO);
    /// The largest accepted input amount: one trillion dollars less a cent. Sums of millions
    /// of such amounts still fit a `Decimal`, so arithmetic on loaded data cannot overflow.
    pub const MAX: Money = Money(Decimal::from_parts(276_447_231, 23_283, 0, false, 2));

    /// Parses a strict decimal string: optional `-`, digits, optionally `.` and one or two
    /// digits. No exponent, no thousands separators, no `$`, no whitespace.
    pub fn parse(text: &str) -> Result<Money, MoneyError> {
        let unsigned = text.strip_prefix('-').unwrap_or(text);
        let (whole, cents) = match unsigned.split_once('.') {
            Some((whole, cents)) => (whole, Some(cents)),
            None => (unsigned, None),
        };
        let digits = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit());
        if !digits(whole) || cents.is_some_and(|c| !digits(c)) {
            return Err(MoneyError::Syntax(text.to_owned()));
        }
        if cents.is_some_and(|c| c.len() > 2) {
            return Err(MoneyError::TooPrecise(text.to_owned()));
        }
        // Bound the length before parsing so huge digit strings never reach Decimal.
        if whole.trim_start_matches('0').len() > 12 {
            return Err(MoneyError::OutOfRange(text.to_owned()));
        }
        let value = Decimal::from_str(text).map_err(|_| MoneyError::OutOfRange(text.to_owned()))?;
        let money = Money(value);
        if money.abs() > Money::MAX {
            return Err(MoneyError::OutOfRange(text.to_owned()));
        }
        Ok(money)
    }

    /// Wraps a decimal, rounding it to cents half away from zero.
    pub fn from_decimal(value: Decimal) -> Money {
        Money(round_cents(value))
    }

    /// The underlying decimal (always at most two decimal places).
    pub fn decimal(self) -> Decimal {
        self.0
    }

    /// The absolute value.
    pub fn abs(self) -> Money {
        Money(self.0.abs())
    }

    /// True when strictly above zero.
    pub fn is_positive(self) -> bool {
        self.0 > Decimal::ZERO
    }

    /// True when below zero.
    pub fn is_negative(self) -> bool {
        self.0 < Decimal::ZERO
    }

    /// The larger of `self` and zero.
    pub fn at_least_zero(self) -> Money {
        if self.is_negative() {
            Money::ZERO
        } else {
            self
        }
    }

    /// Data form: exactly two decimals, no `$`, no separators (`1234.50`, `-3.00`).
    pub fn plain(self) -> String {
        format!("{:.2}", self.0)
    }

    /// Letter form: `$1,234.50`, negative as `-$3.00`.
    pub fn dollars(self) -> String {
        let plain = self.abs().plain();
        let (whole, cents) = plain.split_once('.').unwrap_or((plain.as_str(), "00"));
        let mut grouped = String::with_capacity(whole.len() + whole.len() / 3);
        for (i, digit) in whole.chars().enumerate() {
            if i > 0 && (whole.len() - i) % 3 == 0 {
                grouped.push(',');
            }
            grouped.push(digit);
        }
        let sign = if self.is_negative() { "-" } else { "" };
        format!("{sign}${grouped}.{cents}")
    }
}

/// Rounds to cents, half away from zero (the rule the spec gives for interest).
pub fn round_cents(value: Decimal) -> Decimal {
    value.round_dp_with_strategy(2, RoundingStrategy::MidpointAwayFromZero)
}

impl fmt::Display for Money {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.plain())
    }
}

impl Add for Money {
    type Output = Money;
    fn add(self, rhs: Money) -> Money {
        Money(self.0 + rhs.0)
    }
}

impl Sub for Money {
    type Output = Money;
    fn sub(self, rhs: Money) -> Money {
        Money(self.0 - rhs.0)
    }
}

impl Sum for Money {
    fn sum<I: Iterator<Item = Money>>(iter: I) -> Money {
        iter.fold(Money::ZERO, Add::add)
    }
}

impl<'a> Sum<&'a Money> for Money {
    fn sum<I: Iterator<Item = &'a Money>>(iter: I) -> Money {
        iter.copied().sum()
    }
}

/// Serialized in data form, as a string: `"1234.50"`.
impl Serialize for Money {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&self.plain())
    }
}

/// Deserialized from a string only; a JSON number is refused (floats would lose cents).
impl<'de> Deserialize<'de> for Money {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Money, D::Error> {
        struct Visitor;
        impl serde::de::Visitor<'_> for Visitor {
            type Value = Money;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("an amount as a string, like \"1234.50\"")
            }
            fn visit_str<E: serde::de::Error>(self, text: &str) -> Result<Money, E> {
                Money::parse(text).map_err(E::custom)
            }
        }
        deserializer.deserialize_str(Visitor)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn m(text: &str) -> Money {
        Money::parse(text).expect("valid amount")
    }

    #[test]
    fn parses_strict_decimal_strings() {
        assert_eq!(m("1234.50").plain(), "1234.50");
        assert_eq!(m("0").plain(), "0.00");
        assert_eq!(m("7.5").plain(), "7.50");
        assert_eq!(m("-3.00").plain(), "-3.00");
        assert_eq!(m("999999999999.99"), Money::MAX);
        for bad in [
            "", ".", "1.", ".5", "1,234.00", "$5", " 5", "5 ", "1e3", "+5", "--1", "0x10",
        ] {
            assert!(
                matches!(Money::parse(bad), Err(MoneyError::Syntax(_))),
                "{bad:?}"
            );
        }
        assert!(matches!(
            Money::parse("1.005"),
            Err(MoneyError::TooPrecise(_))
        ));
        assert!(matches!(
            Money::parse("1000000000000.00"),
            Err(MoneyError::OutOfRange(_))
        ));
        let huge = "9".repeat(400);
        assert!(matches!(
            Money::parse(&huge),
            Err(MoneyError::OutOfRange(_))
        ));
        assert_eq!(m("000000000000000000001.00").plain(), "1.00");
    }

    #[test]
    fn formats_dollars_with_separators() {
        assert_eq!(m("0").dollars(), "$0.00");
        assert_eq!(m("5.1").dollars(), "$5.10");
        assert_eq!(m("999.99").dollars(), "$999.99");
        assert_eq!(m("1000").dollars(), "$1,000.00");
        assert_eq!(m("1860.00").dollars(), "$1,860.00");
        assert_eq!(m("1234567.89").dollars(), "$1,234,567.89");
        assert_eq!(m("-25").dollars(), "-$25.00");
        assert_eq!(Money::MAX.dollars(), "$999,999,999,999.99");
    }

    #[test]
    fn rounds_half_away_from_zero() {
        let d = |s: &str| Decimal::from_str(s).expect("decimal");
        assert_eq!(round_cents(d("0.125")), d("0.13"));
        assert_eq!(round_cents(d("0.135")), d("0.14"));
        assert_eq!(round_cents(d("0.124999")), d("0.12"));
        assert_eq!(round_cents(d("-0.125")), d("-0.13"));
        assert_eq!(round_cents(d("2.675")), d("2.68"));
        // 1% of $1,234.50 is 12.345, which rounds up to 12.35 (banker's rounding would give 12.34).
        assert_eq!(round_cents(d("1234.50") * d("0.01")), d("12.35"));
    }

    #[test]
    fn sums_and_clamps() {
        let total: Money = [m("1.10"), m("2.20"), m("3.30")].iter().sum();
        assert_eq!(total, m("6.60"));
        assert_eq!((m("5") - m("7")).at_least_zero(), Money::ZERO);
        assert_eq!((m("7") - m("5")).at_least_zero(), m("2"));
    }

    #[test]
    fn deserializes_from_strings_only() {
        let ok: Money = serde_json::from_str("\"12.34\"").expect("string amount");
        assert_eq!(ok, m("12.34"));
        assert!(serde_json::from_str::<Money>("12.34").is_err());
        assert!(serde_json::from_str::<Money>("\"12,34\"").is_err());
        assert_eq!(
            serde_json::to_string(&m("5")).expect("serialize"),
            "\"5.00\""
        );
    }
}
