//! Certified Mail article numbers: 20 digits, a configured prefix, a serial from a
//! configured range, and the USPS mod-10 check digit.

/// The USPS mod-10 check digit of `digits` (the number without its check digit): from the
/// right, digits are weighted 3, 1, 3, 1, …; the check digit brings the sum to a multiple
/// of ten. `None` if `digits` holds anything but ASCII digits.
pub fn check_digit(digits: &str) -> Option<u8> {
    let mut sum = 0u32;
    for (i, b) in digits.bytes().rev().enumerate() {
        if !b.is_ascii_digit() {
            return None;
        }
        let weight = if i % 2 == 0 { 3 } else { 1 };
        sum += weight * u32::from(b - b'0');
    }
    Some(((10 - sum % 10) % 10) as u8)
}

/// Whether a complete number (spaces allowed) ends in its correct check digit.
pub fn is_valid(number: &str) -> bool {
    let digits: String = number.chars().filter(|c| *c != ' ').collect();
    match digits.len().checked_sub(1) {
        Some(body) if body > 0 => {
            check_digit(&digits[..body]).map(|d| char::from(b'0' + d))
                == digits[body..].chars().next()
        }
        _ => false,
    }
}

/// The 20-digit article number for `serial` under `prefix`: prefix, the serial padded with
/// zeros to fill 19 digits, the check digit. `None` if the prefix is not digits or the
/// serial does not fit.
pub fn article_number(prefix: &str, serial: u64) -> Option<String> {
    let width = 19usize.checked_sub(prefix.len())?;
    let serial = format!("{serial:0width$}");
    if serial.len() != width || !prefix.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let body = format!("{prefix}{serial}");
    let check = check_digit(&body)?;
    Some(format!("{body}{check}"))
}

/// An article number in groups of four, as printed: `7196 9008 9111 1234 5675`.
pub fn grouped(number: &str) -> String {
    number
        .as_bytes()
        .chunks(4)
        .map(|c| String::from_utf8_lossy(c).into_owned())
        .collect::<Vec<_>>()
        .join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn published_numbers_validate() {
        // Valid 20-digit and 22-digit USPS tracking numbers used as examples by the
        // open-source `tracking_number` projects' test suites (the same mod-10 rule).
        assert!(is_valid("0307 1790 0005 2348 3741"));
        assert!(is_valid("7112 3456 7891 2345 6787"));
        assert!(is_valid("9400 1112 0108 0805 4830 16"));
        assert!(is_valid("9101 1234 5678 9000 0000 13"));
        // One digit changed: invalid.
        assert!(!is_valid("0307 1790 0005 2348 3742"));
        assert!(!is_valid("7112 3456 7891 2345 6788"));
        assert!(!is_valid(""));
    }

    #[test]
    fn numbers_are_built_with_their_check_digit() {
        let number = article_number("0307179000", 52348374).expect("fits");
        assert_eq!(number, "03071790000523483741");
        assert_eq!(grouped(&number), "0307 1790 0005 2348 3741");
        assert_eq!(
            article_number("71123456789", 12345678).as_deref(),
            Some("71123456789123456787")
        );
        assert_eq!(article_number("7112345678", 1_000_000_000), None);
        assert_eq!(article_number("71x", 1), None);
    }
}
