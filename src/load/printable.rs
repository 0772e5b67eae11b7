//! What a text field may hold so that it prints as written: no control characters, no
//! characters that change layout (line and paragraph separators, bidi controls and other
//! invisible format characters), and only characters the bundled letter fonts can draw.
//!
//! The font check uses the coverage of the faces the letters are set in (Liberation Sans
//! regular and bold, embedded in the binary from `fonts/`), so a name that would make the
//! PDF export fail at render time ("missing glyph") is refused at load instead, naming the
//! field and the character. Liberation covers Latin (with Latin-1 and Extended-A/B),
//! Greek, Cyrillic and Hebrew (set right to left by Typst); Arabic, CJK, Indic scripts,
//! emoji and full-width forms are refused.

use std::sync::OnceLock;

use typst::foundations::Bytes;
use typst::text::{Coverage, Font};

/// The faces names and addresses are set in.
static FACES: [&[u8]; 2] = [
    include_bytes!("../../fonts/LiberationSans-Regular.ttf"),
    include_bytes!("../../fonts/LiberationSans-Bold.ttf"),
];

/// Why a character may not appear in printed text.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Unprintable {
    /// A control character (Cc): line break, tab, escape, …
    Control,
    /// A line or paragraph separator (Zl, Zp).
    Separator,
    /// A bidi control or another invisible format character (Cf) that changes layout.
    Format,
    /// A character the letter fonts have no glyph for.
    NoGlyph,
}

impl Unprintable {
    /// What the character is, for an error message.
    pub(super) fn describe(self) -> &'static str {
        match self {
            Unprintable::Control => "a control character (line break, tab, escape)",
            Unprintable::Separator => "a Unicode line or paragraph separator",
            Unprintable::Format => {
                "an invisible format character (bidi control, zero-width or similar) that changes how the text is laid out"
            }
            Unprintable::NoGlyph => {
                "a character the letter fonts cannot print (they cover Latin, Greek, Cyrillic and Hebrew; write the name as on the taxpayer's tax return, in one of those)"
            }
        }
    }
}

/// The first character of `text` that may not be printed, with why.
pub(super) fn first_unprintable(text: &str) -> Option<(char, Unprintable)> {
    text.chars()
        .find_map(|c| unprintable(c).map(|why| (c, why)))
}

/// Why `c` may not be printed, or `None` when it may.
pub(super) fn unprintable(c: char) -> Option<Unprintable> {
    if c.is_ascii() {
        return c.is_ascii_control().then_some(Unprintable::Control);
    }
    if c.is_control() {
        Some(Unprintable::Control)
    } else if matches!(c, '\u{2028}' | '\u{2029}') {
        Some(Unprintable::Separator)
    } else if is_format(c) {
        Some(Unprintable::Format)
    } else if !coverage().iter().all(|face| face.contains(u32::from(c))) {
        Some(Unprintable::NoGlyph)
    } else {
        None
    }
}

/// Whether `c` is invisible or moves text around when shown: a control character (Cc), a
/// line or paragraph separator (Zl, Zp) or a format character (Cf). Such characters are
/// refused in input and escaped in messages ([`crate::report::escape`]).
pub(crate) fn is_invisible(c: char) -> bool {
    c.is_control() || matches!(c, '\u{2028}' | '\u{2029}') || is_format(c)
}

/// `U+202E`: how a character is named in messages (never the character itself).
pub(super) fn code_point(c: char) -> String {
    format!("U+{:04X}", u32::from(c))
}

/// Unicode general category Cf (format): bidi controls (U+061C, U+200E/F, U+202A–202E,
/// U+2066–2069), zero-width characters, the soft hyphen, the BOM, tags, and the rest.
fn is_format(c: char) -> bool {
    matches!(
        u32::from(c),
        0x00AD
            | 0x0600..=0x0605
            | 0x061C
            | 0x06DD
            | 0x070F
            | 0x0890..=0x0891
            | 0x08E2
            | 0x180E
            | 0x200B..=0x200F
            | 0x202A..=0x202E
            | 0x2060..=0x2064
            | 0x2066..=0x206F
            | 0xFEFF
            | 0xFFF9..=0xFFFB
            | 0x110BD
            | 0x110CD
            | 0x13430..=0x1343F
            | 0x1BCA0..=0x1BCA3
            | 0x1D173..=0x1D17A
            | 0xE0001
            | 0xE0020..=0xE007F
    )
}

/// The coverage of each face, read once.
fn coverage() -> &'static [Coverage] {
    static COVERAGE: OnceLock<Vec<Coverage>> = OnceLock::new();
    COVERAGE.get_or_init(|| {
        FACES
            .iter()
            .filter_map(|bytes| Font::new(Bytes::new(*bytes), 0))
            .map(|font| font.info().coverage.clone())
            .collect()
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn both_faces_load() {
        assert_eq!(coverage().len(), FACES.len());
    }

    #[test]
    fn latin_greek_cyrillic_print() {
        for text in [
            "José Ñúñez-O’Brien",
            "Zoë Øster",
            "Łukasz Wąż",
            "Αλέξης",
            "Жанна",
            "דוד כהן",
        ] {
            assert_eq!(first_unprintable(text), None, "{text}");
        }
    }

    #[test]
    fn scripts_the_fonts_lack_are_refused() {
        for (text, c) in [
            ("محمد", 'م'),
            ("สมชาย", 'ส'),
            ("Ann 😀", '😀'),
            ("ＡＢＣ", 'Ａ'),
            ("山田", '山'),
        ] {
            assert_eq!(
                first_unprintable(text),
                Some((c, Unprintable::NoGlyph)),
                "{text}"
            );
        }
    }

    #[test]
    fn layout_characters_are_refused() {
        assert_eq!(
            first_unprintable("Eve \u{202e}evil\u{202c}"),
            Some(('\u{202e}', Unprintable::Format))
        );
        for c in [
            '\u{2066}', '\u{2069}', '\u{200e}', '\u{200f}', '\u{061c}', '\u{200b}',
        ] {
            assert_eq!(
                unprintable(c),
                Some(Unprintable::Format),
                "{}",
                code_point(c)
            );
        }
        assert_eq!(unprintable('\u{2028}'), Some(Unprintable::Separator));
        assert_eq!(unprintable('\u{2029}'), Some(Unprintable::Separator));
        assert_eq!(unprintable('\u{1b}'), Some(Unprintable::Control));
        assert_eq!(unprintable('\u{85}'), Some(Unprintable::Control));
        assert_eq!(code_point('\u{202e}'), "U+202E");
        assert_eq!(code_point('😀'), "U+1F600");
    }
}
