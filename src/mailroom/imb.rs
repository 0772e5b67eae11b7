//! The USPS Intelligent Mail barcode (USPS-B-3200): tracking and routing code → the 65
//! bars, written as the usual `F`/`A`/`D`/`T` letters (full, ascender, descender, tracker).
//!
//! The encoder follows the specification's steps: the routing and tracking digits become
//! one 102-bit number; an 11-bit CRC (frame check sequence) is taken over it; the number
//! is split into ten codewords (bases 659/1365…/636), codeword J is doubled and the CRC's
//! top bit folded into A; each codeword becomes a 13-bit character from the 5-of-13 or
//! 2-of-13 table, inverted where the CRC has a bit set; and each bar takes its ascender and
//! descender from one bit of two characters (the specification's bar table).
//! Tests check the four examples published in USPS-B-3200.

/// Why a tracking or routing code cannot be encoded.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ImbError {
    /// A field has the wrong number of digits.
    #[error("IMb {field} must be {expected} digits, got `{value}`")]
    Length {
        /// The field (barcode id, service type id, mailer id, serial, routing code, tracking code).
        field: &'static str,
        /// What is allowed.
        expected: &'static str,
        /// The value given.
        value: String,
    },
    /// A field holds something other than digits.
    #[error("IMb {field} must be digits only, got `{value}`")]
    NotDigits {
        /// The field.
        field: &'static str,
        /// The value given.
        value: String,
    },
    /// The barcode id's second digit is above 4 (the specification allows 0–4).
    #[error("IMb barcode id `{0}`: its second digit must be 0 to 4")]
    BarcodeId(String),
}

/// The 20-digit tracking code: barcode id (2), service type id (3), mailer id (6 or 9)
/// and serial (9 or 6: mailer id and serial together are 15 digits).
pub fn tracking_code(
    barcode_id: &str,
    service_type_id: &str,
    mailer_id: &str,
    serial: &str,
) -> Result<String, ImbError> {
    digits("barcode id", barcode_id)?;
    digits("service type id", service_type_id)?;
    digits("mailer id", mailer_id)?;
    digits("serial", serial)?;
    if barcode_id.len() != 2 {
        return Err(length("barcode id", "2", barcode_id));
    }
    if barcode_id.as_bytes()[1] > b'4' {
        return Err(ImbError::BarcodeId(barcode_id.to_owned()));
    }
    if service_type_id.len() != 3 {
        return Err(length("service type id", "3", service_type_id));
    }
    let serial_len = match mailer_id.len() {
        6 => 9,
        9 => 6,
        _ => return Err(length("mailer id", "6 or 9", mailer_id)),
    };
    if serial.len() != serial_len {
        let expected = if serial_len == 9 { "9" } else { "6" };
        return Err(length("serial", expected, serial));
    }
    Ok(format!("{barcode_id}{service_type_id}{mailer_id}{serial}"))
}

/// Encodes a 20-digit tracking code and a routing code of 0, 5, 9 or 11 digits (ZIP,
/// ZIP+4, ZIP+4 + delivery point) as 65 bar letters.
pub fn encode(tracking: &str, routing: &str) -> Result<String, ImbError> {
    digits("tracking code", tracking)?;
    digits("routing code", routing)?;
    if tracking.len() != 20 {
        return Err(length("tracking code", "20", tracking));
    }
    if tracking.as_bytes()[1] > b'4' {
        return Err(ImbError::BarcodeId(tracking[..2].to_owned()));
    }
    let value = binary_data(tracking, routing)?;
    let fcs = crc11(value);
    let codewords = oriented(codewords(value), fcs);
    let characters = characters(&codewords, fcs);
    Ok(bars(&characters))
}

fn digits(field: &'static str, value: &str) -> Result<(), ImbError> {
    if value.bytes().all(|b| b.is_ascii_digit()) {
        Ok(())
    } else {
        Err(ImbError::NotDigits {
            field,
            value: value.to_owned(),
        })
    }
}

fn length(field: &'static str, expected: &'static str, value: &str) -> ImbError {
    ImbError::Length {
        field,
        expected,
        value: value.to_owned(),
    }
}

/// Step 1: the routing code and tracking code as one number below 2^102.
fn binary_data(tracking: &str, routing: &str) -> Result<u128, ImbError> {
    let number = |s: &str| s.bytes().fold(0u128, |n, b| n * 10 + u128::from(b - b'0'));
    let mut value = match routing.len() {
        0 => 0,
        5 => number(routing) + 1,
        9 => number(routing) + 100_000 + 1,
        11 => number(routing) + 1_000_000_000 + 100_000 + 1,
        _ => return Err(length("routing code", "0, 5, 9 or 11", routing)),
    };
    let d = tracking.as_bytes();
    value = value * 10 + u128::from(d[0] - b'0');
    value = value * 5 + u128::from(d[1] - b'0');
    for b in &d[2..] {
        value = value * 10 + u128::from(b - b'0');
    }
    Ok(value)
}

/// Step 2: the 11-bit frame check sequence over the 102 bits (as 13 bytes, the first
/// byte's top two bits skipped), generator polynomial 0xF35.
fn crc11(value: u128) -> u16 {
    const POLY: u16 = 0x0F35;
    let bytes = value.to_be_bytes();
    let data = &bytes[3..]; // 13 bytes
    let mut fcs: u16 = 0x07FF;
    let mut step = |byte: u8, skip: u32| {
        let mut data = u16::from(byte) << 3;
        for bit in 0..8 {
            if bit >= skip {
                if (fcs ^ data) & 0x400 != 0 {
                    fcs = (fcs << 1) ^ POLY;
                } else {
                    fcs <<= 1;
                }
                fcs &= 0x7FF;
            }
            data <<= 1;
        }
    };
    step(data[0], 2);
    for &byte in &data[1..] {
        step(byte, 0);
    }
    fcs
}

/// Step 3: ten codewords A…J (J in base 636, B…I in base 1365, A the rest: 0–658).
fn codewords(mut value: u128) -> [u16; 10] {
    let mut words = [0u16; 10];
    words[9] = (value % 636) as u16;
    value /= 636;
    for word in words[1..9].iter_mut().rev() {
        *word = (value % 1365) as u16;
        value /= 1365;
    }
    words[0] = value as u16;
    words
}

/// Step 4: J doubled (orientation), A plus 659 when the FCS's bit 10 is set.
fn oriented(mut words: [u16; 10], fcs: u16) -> [u16; 10] {
    words[9] *= 2;
    if fcs & 0x400 != 0 {
        words[0] += 659;
    }
    words
}

/// The n-of-13 table of USPS-B-3200: 13-bit values with `n` bits set, each paired with
/// its bit reversal from the front, palindromes from the back.
fn n_of_13(n: u32, len: usize) -> Vec<u16> {
    let mut table = vec![0u16; len];
    let (mut lower, mut upper) = (0usize, len - 1);
    for count in 0u16..8192 {
        if count.count_ones() != n {
            continue;
        }
        let reverse = count.reverse_bits() >> 3;
        if reverse < count {
            continue;
        }
        if reverse == count {
            table[upper] = count;
            upper = upper.saturating_sub(1);
        } else {
            table[lower] = count;
            table[lower + 1] = reverse;
            lower += 2;
        }
    }
    table
}

/// The 5-of-13 and 2-of-13 tables, built once: every print letter's barcode needs them,
/// and building them scans all 8 192 13-bit values.
static TABLES: std::sync::LazyLock<(Vec<u16>, Vec<u16>)> =
    std::sync::LazyLock::new(|| (n_of_13(5, 1287), n_of_13(2, 78)));

/// Step 5: codewords → 13-bit characters, inverted where the FCS has a bit set.
fn characters(words: &[u16; 10], fcs: u16) -> [u16; 10] {
    let (table5, table2) = &*TABLES;
    let mut chars = [0u16; 10];
    for (i, &word) in words.iter().enumerate() {
        let word = usize::from(word);
        let mut c = if word < 1287 {
            table5[word]
        } else {
            table2.get(word - 1287).copied().unwrap_or(0)
        };
        if fcs & (1 << i) != 0 {
            c = !c & 0x1FFF;
        }
        chars[i] = c;
    }
    chars
}

/// USPS-B-3200's bar table: for bars 1…65, the (character, bit) of the descender and of
/// the ascender. Characters A…J are 0…9.
const BAR_TABLE: [(u8, u8, u8, u8); 65] = [
    (7, 2, 4, 3),
    (1, 10, 0, 0),
    (9, 12, 2, 8),
    (5, 5, 6, 11),
    (8, 9, 3, 1),
    (0, 1, 5, 12),
    (2, 5, 1, 8),
    (4, 4, 9, 11),
    (6, 3, 8, 10),
    (3, 9, 7, 6),
    (5, 11, 1, 4),
    (8, 5, 2, 12),
    (9, 10, 0, 2),
    (7, 1, 6, 7),
    (3, 6, 4, 9),
    (0, 3, 8, 6),
    (6, 4, 2, 7),
    (1, 1, 9, 9),
    (7, 10, 5, 2),
    (4, 0, 3, 8),
    (6, 2, 0, 4),
    (8, 11, 1, 0),
    (9, 8, 3, 12),
    (2, 6, 7, 7),
    (5, 1, 4, 10),
    (1, 12, 6, 9),
    (7, 3, 8, 0),
    (5, 8, 9, 7),
    (4, 6, 2, 10),
    (3, 4, 0, 5),
    (8, 4, 5, 7),
    (7, 11, 1, 9),
    (6, 0, 9, 6),
    (0, 6, 4, 8),
    (2, 1, 3, 2),
    (5, 9, 8, 12),
    (4, 11, 6, 1),
    (9, 5, 7, 4),
    (3, 3, 1, 2),
    (0, 7, 2, 0),
    (1, 3, 4, 1),
    (6, 10, 3, 5),
    (8, 7, 9, 4),
    (2, 11, 5, 6),
    (0, 8, 7, 12),
    (4, 2, 8, 1),
    (5, 10, 3, 0),
    (9, 3, 0, 9),
    (6, 5, 2, 4),
    (7, 8, 1, 7),
    (5, 0, 4, 5),
    (2, 3, 0, 10),
    (6, 12, 9, 2),
    (3, 11, 1, 6),
    (8, 8, 7, 9),
    (5, 4, 0, 11),
    (1, 5, 2, 2),
    (9, 1, 4, 12),
    (8, 3, 6, 6),
    (7, 0, 3, 7),
    (4, 7, 7, 5),
    (0, 12, 1, 11),
    (2, 9, 9, 0),
    (6, 8, 5, 3),
    (3, 10, 8, 2),
];

/// Step 6: characters → bars.
fn bars(chars: &[u16; 10]) -> String {
    let bit = |c: u8, b: u8| chars[usize::from(c)] >> b & 1 == 1;
    BAR_TABLE
        .iter()
        .map(|&(dc, db, ac, ab)| match (bit(dc, db), bit(ac, ab)) {
            (true, true) => 'F',
            (false, true) => 'A',
            (true, false) => 'D',
            (false, false) => 'T',
        })
        .collect()
}

/// USPS-B-3200 dimensions of the printed barcode, in units of 1/22 000 inch (so that each
/// is a whole number): pitch 1/22 in (20–24 bars per inch), bar width 0.02 in
/// (0.015–0.025), full bar 0.145 in (0.125–0.165), tracker 0.048 in (0.039–0.057);
/// ascender and descender take the rest of the full height evenly.
pub mod dimensions {
    /// Units per inch.
    pub const PER_INCH: u32 = 22_000;
    /// From the left edge of one bar to the next.
    pub const PITCH: u32 = 1_000;
    /// The width of each bar.
    pub const BAR: u32 = 440;
    /// The height of a full bar (`F`).
    pub const FULL: u32 = 3_190;
    /// The height of the tracker, the middle part every bar has.
    pub const TRACKER: u32 = 1_056;
    /// The height of an ascender (above the tracker) or descender (below it).
    pub const GAP: u32 = (FULL - TRACKER) / 2;
    /// The width of the whole barcode: 64 pitches and one bar.
    pub const WIDTH: u32 = 64 * PITCH + BAR;
}

/// The barcode is not 65 bar letters `F`, `A`, `D`, `T`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("an Intelligent Mail barcode is 65 bar letters F, A, D or T, got `{0}`")]
pub struct NotBars(pub String);

/// The 65 bars drawn as one SVG path ([`dimensions`], top left at 0 0), sized in inches,
/// for the letter layout to place in the address window as a picture. One path drawn
/// here instead of 65 shapes laid out by Typst: the shapes cost every print letter about
/// 5% more CPU (docs/decisions.md, "How the barcode is drawn"). Whole numbers only:
/// formatting decimals exactly would cost more than the drawing.
pub fn svg(bars: &str) -> Result<String, NotBars> {
    use dimensions::{BAR, FULL, GAP, PER_INCH, PITCH, TRACKER, WIDTH};
    use std::fmt::Write as _;
    if bars.len() != 65 || !bars.bytes().all(|b| b"FADT".contains(&b)) {
        return Err(NotBars(bars.to_owned()));
    }
    let mut path = String::with_capacity(65 * 32);
    for (x, bar) in (0..).step_by(PITCH as usize).zip(bars.bytes()) {
        let top = if matches!(bar, b'F' | b'A') { 0 } else { GAP };
        let bottom = if matches!(bar, b'F' | b'D') {
            FULL
        } else {
            GAP + TRACKER
        };
        let _ = write!(path, "M{x} {top}H{}V{bottom}H{x}Z", x + BAR);
    }
    let inches = |units: u32| f64::from(units) / f64::from(PER_INCH);
    Ok(format!(
        "<svg xmlns='http://www.w3.org/2000/svg' width='{:.6}in' height='{:.6}in' \
         viewBox='0 0 {WIDTH} {FULL}'><path fill='#000' d='{path}'/></svg>",
        inches(WIDTH),
        inches(FULL),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// USPS-B-3200, Appendix C: one tracking code, four routing codes.
    const TRACKING: &str = "01234567094987654321";
    const VECTORS: [(&str, &str); 4] = [
        (
            "",
            "ATTFATTDTTADTAATTDTDTATTDAFDDFADFDFTFFFFFTATFAAAATDFFTDAADFTFDTDT",
        ),
        (
            "01234",
            "DTTAFADDTTFTDTFTFDTDDADADAFADFATDDFTAAAFDTTADFAAATDFDTDFADDDTDFFT",
        ),
        (
            "012345678",
            "ADFTTAFDTTTTFATTADTAAATFTFTATDAAAFDDADATATDTDTTDFDTDATADADTDFFTFA",
        ),
        (
            "01234567891",
            "AADTFFDFTDADTAADAATFDTDDAAADDTDTTDAFADADDDTFFFDDTTTADFAAADFTDAADA",
        ),
    ];

    #[test]
    fn the_four_published_vectors() {
        for (routing, bars) in VECTORS {
            assert_eq!(encode(TRACKING, routing).as_deref(), Ok(bars), "{routing}");
        }
    }

    #[test]
    fn intermediate_steps_match_the_specification() {
        // Appendix C's binary data and FCS for the 11-digit routing example.
        let value = binary_data(TRACKING, "01234567891").expect("valid");
        assert_eq!(value, 0x016907B2A24ABC16A2E5C004B1);
        assert_eq!(crc11(value), 0x751);
        assert_eq!(
            codewords(value),
            [14, 787, 607, 1022, 861, 19, 816, 1294, 35, 301]
        );
        let words = oriented(codewords(value), crc11(value));
        assert_eq!(words, [673, 787, 607, 1022, 861, 19, 816, 1294, 35, 602]);
        assert_eq!(
            characters(&words, crc11(value)),
            [
                0x0DCB, 0x085C, 0x08E4, 0x0B06, 0x06DD, 0x1740, 0x17C6, 0x1200, 0x123F, 0x1B2B
            ]
        );
        assert_eq!(crc11(binary_data(TRACKING, "").expect("valid")), 0x051);
    }

    #[test]
    fn the_bar_table_uses_every_character_bit_once() {
        let mut seen = std::collections::HashSet::new();
        for (dc, db, ac, ab) in BAR_TABLE {
            assert!(seen.insert((dc, db)));
            assert!(seen.insert((ac, ab)));
        }
        assert_eq!(seen.len(), 130);
        assert!(seen.iter().all(|&(c, b)| c < 10 && b < 13));
    }

    #[test]
    fn invalid_inputs_are_refused() {
        assert!(matches!(
            encode(&TRACKING[..19], ""),
            Err(ImbError::Length { .. })
        ));
        assert!(matches!(
            encode(TRACKING, "1234"),
            Err(ImbError::Length { .. })
        ));
        assert!(matches!(
            encode(TRACKING, "0123456789"),
            Err(ImbError::Length { .. })
        ));
        assert!(matches!(
            encode("0523456709498765432A", ""),
            Err(ImbError::NotDigits { .. })
        ));
        assert!(matches!(
            encode("05234567094987654321", ""),
            Err(ImbError::BarcodeId(_))
        ));
        assert_eq!(
            tracking_code("01", "234", "567094", "987654321").as_deref(),
            Ok(TRACKING)
        );
        assert!(tracking_code("05", "234", "567094", "987654321").is_err());
        assert!(tracking_code("0", "234", "567094", "987654321").is_err());
        assert!(tracking_code("01", "23", "567094", "987654321").is_err());
        assert!(tracking_code("01", "234", "5670", "987654321").is_err());
        assert!(tracking_code("01", "234", "567094", "98765").is_err());
        assert!(tracking_code("01", "234", "567094321", "987654").is_ok());
    }

    /// Each bar's rectangle in the SVG, in order: (left, top, right, bottom).
    fn rectangles(svg: &str) -> Vec<[u32; 4]> {
        let d = svg
            .split("d='")
            .nth(1)
            .expect("a path")
            .split('\'')
            .next()
            .expect("end");
        d.split('Z')
            .filter(|s| !s.is_empty())
            .map(|bar| {
                let n: Vec<u32> = bar
                    .split(['M', 'H', 'V', ' '])
                    .filter(|s| !s.is_empty())
                    .map(|v| v.parse().expect("number"))
                    .collect();
                assert_eq!(n.len(), 5, "{bar}");
                assert_eq!(n[0], n[4], "{bar}: closes on its left edge");
                [n[0], n[1], n[2], n[3]]
            })
            .collect()
    }

    #[test]
    fn the_drawing_has_each_bar_at_its_place_and_height() {
        use dimensions::*;
        let (_, bars) = VECTORS[3];
        let svg = svg(bars).expect("bars");
        assert!(
            svg.contains("width='2.929091in' height='0.145000in' viewBox='0 0 64440 3190'"),
            "{svg}"
        );
        let rects = rectangles(&svg);
        assert_eq!(rects.len(), 65);
        for (i, (bar, [left, top, right, bottom])) in (0u32..).zip(bars.chars().zip(rects)) {
            assert_eq!(left, PITCH * i, "bar {i}");
            assert_eq!(right - left, BAR, "bar {i} width");
            let (want_top, want_bottom) = match bar {
                'F' => (0, FULL),
                'A' => (0, GAP + TRACKER),
                'D' => (GAP, FULL),
                _ => (GAP, GAP + TRACKER),
            };
            assert_eq!((top, bottom), (want_top, want_bottom), "bar {i} ({bar})");
        }
        // USPS-B-3200's ranges, in inches; the ascender and descender are equal.
        let inches = |units: u32| f64::from(units) / f64::from(PER_INCH);
        assert!((0.125..=0.165).contains(&inches(FULL)));
        assert!((0.039..=0.057).contains(&inches(TRACKER)));
        assert!((0.015..=0.025).contains(&inches(BAR)));
        assert!((20.0..=24.0).contains(&(1.0 / inches(PITCH))));
        assert_eq!(2 * GAP + TRACKER, FULL);
    }

    #[test]
    fn only_65_bar_letters_are_drawn() {
        assert!(svg(&"F".repeat(64)).is_err());
        assert!(svg(&format!("{}X", "F".repeat(64))).is_err());
        assert!(svg(&format!("{}'", "T".repeat(64))).is_err());
        assert!(svg(&"T".repeat(65)).is_ok());
    }
}
