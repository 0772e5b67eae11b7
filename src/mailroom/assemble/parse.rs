//! A quick reader for letters as Typst writes them: one classic cross-reference table, no
//! incremental updates, no object streams, no encryption, every stream's `/Length` a
//! direct integer, not linearized. It gives the same `lopdf::Document` (objects, trailer,
//! version, binary mark, largest object number, cross-reference table and its offset and
//! section count; `linearization` is `None` as lopdf leaves it for such a file) that
//! `lopdf`'s strict load gives, with about 40 % fewer instructions; anything else in the file (a comment inside an object, a reference
//! as a length, a cross-reference stream, a number `lopdf` reads in its own way) makes it
//! give up, and the caller loads the file with `lopdf` as before.
//!
//! Parsing was 44 % of assembling a batch (profile of `examples/assemble_batch.rs`); the
//! batch step is what `run` adds to `render`. A unit test compares both readers on every
//! kind of rendered letter (`tests.rs`, `the_quick_reader_reads_letters_as_lopdf_does`).

use std::collections::BTreeMap;

use lopdf::xref::{Xref, XrefEntry, XrefType};
use lopdf::{Dictionary, Document, Object, ObjectId, Stream, StringFormat};

/// Nesting of arrays and dictionaries read here (`lopdf` reads up to 100).
const MAX_DEPTH: usize = 64;

/// Nesting of parentheses inside a literal string read here (`lopdf`: 100).
const MAX_PARENS: usize = 64;

/// The letter in `bytes` as `lopdf`'s strict load reads it, or `None` when the file is not
/// as Typst writes it (then `lopdf` must read it).
pub(super) fn read(bytes: &[u8]) -> Option<Document> {
    let version = header(bytes)?;
    let xref_start = xref_start(bytes)?;
    let mut cursor = Cursor::at(bytes, xref_start);
    let entries = cursor.xref_table()?;
    cursor.expect(b"trailer")?;
    cursor.space()?;
    let trailer = cursor.dictionary(0)?;
    for unread in [&b"Prev"[..], b"XRefStm", b"Encrypt"] {
        if trailer.has(unread) {
            return None;
        }
    }
    let size = trailer.get(b"Size").ok()?.as_i64().ok()?;
    let largest_entry = entries.last().map_or(0, |&(id, _)| id);
    if u32::try_from(size).ok()? != largest_entry.checked_add(1)? {
        return None;
    }

    let mut reference_table = Xref::new(0, XrefType::CrossReferenceTable);
    let mut objects = BTreeMap::new();
    for (id, entry) in entries {
        if let XrefEntry::Normal { offset, generation } = entry {
            let mut cursor = Cursor::at(bytes, usize::try_from(offset).ok()?);
            let (found, object) = cursor.indirect_object()?;
            // `lopdf` takes an object stream's objects out of it, and reads a linearization
            // dictionary into `Document::linearization`.
            if matches!(&object, Object::Stream(s) if s.dict.has_type(b"ObjStm"))
                || matches!(&object, Object::Dictionary(d) if d.has(b"Linearized"))
                || found != (id, generation)
                || objects.insert(found, object).is_some()
            {
                return None;
            }
        }
        reference_table.insert(id, entry);
    }

    let mut doc = Document::new();
    doc.version = version;
    if let Some(mark) = binary_mark(bytes) {
        doc.binary_mark = mark;
    }
    doc.max_id = largest_entry.max(objects.keys().next_back().map_or(0, |id| id.0));
    doc.trailer = trailer;
    doc.reference_table = reference_table;
    doc.objects = objects;
    doc.xref_start = xref_start;
    doc.xref_section_count = 1;
    Some(doc)
}

/// The version in the `%PDF-` line that starts the file, with nothing else on that line.
fn header(bytes: &[u8]) -> Option<String> {
    let rest = bytes.strip_prefix(b"%PDF-")?;
    let length = rest
        .iter()
        .position(|&c| !(c.is_ascii_digit() || c == b'.'))?;
    if !matches!(rest[length], b'\r' | b'\n') {
        return None;
    }
    String::from_utf8(rest[..length].to_vec()).ok()
}

/// The comment on the file's second line when it is all binary bytes, as `lopdf` keeps it.
fn binary_mark(bytes: &[u8]) -> Option<Vec<u8>> {
    let line = bytes.iter().position(|&c| c == b'\n')? + 1;
    let comment = bytes.get(line..)?.strip_prefix(b"%")?;
    let length = comment.iter().position(|&c| c == b'\r' || c == b'\n')?;
    let mark = &comment[..length];
    mark.iter().all(|&c| c >= 128).then(|| mark.to_vec())
}

/// The offset `startxref` gives, found as `lopdf` finds it: the last `%%EOF` in the last
/// 1 024 bytes (white space after it aside), the last `startxref` in the 25 bytes before it.
fn xref_start(bytes: &[u8]) -> Option<usize> {
    let end = bytes.iter().rposition(|&c| !is_white(c))? + 1;
    let from = end.saturating_sub(1024);
    let eof = from + find_last(&bytes[from..end], b"%%EOF")?;
    if eof <= 25 {
        return None;
    }
    let keyword = eof - 25 + find_last(&bytes[eof - 25..eof], b"startxref")?;
    let mut cursor = Cursor::at(bytes, keyword + b"startxref".len());
    cursor.skip_byte(b' ');
    cursor.eol()?;
    cursor.skip_spaces();
    let offset = cursor.digits()?;
    cursor.skip_spaces();
    cursor.eol()?;
    if cursor.pos != eof {
        return None;
    }
    usize::try_from(offset).ok()
}

/// Where `pattern` last occurs in `bytes`.
fn find_last(bytes: &[u8], pattern: &[u8]) -> Option<usize> {
    bytes.windows(pattern.len()).rposition(|w| w == pattern)
}

/// PDF white space.
fn is_white(c: u8) -> bool {
    matches!(c, b' ' | b'\t' | b'\n' | b'\r' | b'\0' | b'\x0C')
}

/// PDF delimiters.
fn is_delimiter(c: u8) -> bool {
    matches!(
        c,
        b'(' | b')' | b'<' | b'>' | b'[' | b']' | b'{' | b'}' | b'/' | b'%'
    )
}

/// Neither white space nor a delimiter: part of a name, number or keyword.
fn is_regular(c: u8) -> bool {
    !is_white(c) && !is_delimiter(c)
}

/// The value of a hexadecimal digit.
fn hex_value(c: u8) -> Option<u8> {
    (c as char).to_digit(16).and_then(|v| u8::try_from(v).ok())
}

/// A position in the file.
struct Cursor<'a> {
    bytes: &'a [u8],
    pos: usize,
}

impl<'a> Cursor<'a> {
    fn at(bytes: &'a [u8], pos: usize) -> Self {
        Self { bytes, pos }
    }

    fn peek(&self) -> Option<u8> {
        self.bytes.get(self.pos).copied()
    }

    fn rest(&self) -> &'a [u8] {
        self.bytes.get(self.pos..).unwrap_or_default()
    }

    /// Steps over `word`, which must come next.
    fn expect(&mut self, word: &[u8]) -> Option<()> {
        self.rest()
            .starts_with(word)
            .then(|| self.pos += word.len())
    }

    /// Steps over `word` when it comes next and is not the start of a longer word.
    fn keyword(&mut self, word: &[u8]) -> Option<()> {
        let rest = self.rest();
        let after = rest.get(word.len()).copied();
        (rest.starts_with(word) && after.is_none_or(|c| !is_regular(c)))
            .then(|| self.pos += word.len())
    }

    fn skip_byte(&mut self, c: u8) {
        if self.peek() == Some(c) {
            self.pos += 1;
        }
    }

    /// Spaces.
    fn skip_spaces(&mut self) {
        while self.peek() == Some(b' ') {
            self.pos += 1;
        }
    }

    /// Spaces and tabs.
    fn skip_blanks(&mut self) {
        while matches!(self.peek(), Some(b' ' | b'\t')) {
            self.pos += 1;
        }
    }

    /// An end of line: CR LF, LF or CR.
    fn eol(&mut self) -> Option<()> {
        match self.peek()? {
            b'\r' => {
                self.pos += 1;
                self.skip_byte(b'\n');
            }
            b'\n' => self.pos += 1,
            _ => return None,
        }
        Some(())
    }

    /// White space; a comment gives up (`lopdf` would read it as white space).
    fn space(&mut self) -> Option<()> {
        while let Some(c) = self.peek() {
            if c == b'%' {
                return None;
            }
            if !is_white(c) {
                break;
            }
            self.pos += 1;
        }
        Some(())
    }

    /// A run of decimal digits, as a number.
    fn digits(&mut self) -> Option<u64> {
        let start = self.pos;
        let mut value: u64 = 0;
        while let Some(c @ b'0'..=b'9') = self.peek() {
            value = value.checked_mul(10)?.checked_add(u64::from(c - b'0'))?;
            self.pos += 1;
        }
        (self.pos > start).then_some(value)
    }

    /// A classic cross-reference table of one or more sections, as (number, entry) pairs
    /// in increasing order, with the white space after it.
    fn xref_table(&mut self) -> Option<Vec<(u32, XrefEntry)>> {
        self.expect(b"xref")?;
        self.skip_byte(b' ');
        self.eol()?;
        let mut entries: Vec<(u32, XrefEntry)> = Vec::new();
        while self.peek().is_some_and(|c| c.is_ascii_digit()) {
            let first = u32::try_from(self.digits()?).ok()?;
            self.expect(b" ")?;
            let count = u32::try_from(self.digits()?).ok()?;
            self.skip_byte(b' ');
            self.eol()?;
            for index in 0..count {
                let line = self.rest().get(..20)?;
                let offset = u32::try_from(Cursor::at(line, 0).digits_exactly(10)?).ok()?;
                let generation = u16::try_from(Cursor::at(line, 11).digits_exactly(5)?).ok()?;
                let in_use = match (line[10], line[16], line[17]) {
                    (b' ', b' ', b'n') => true,
                    (b' ', b' ', b'f') => false,
                    _ => return None,
                };
                if !matches!(&line[18..20], b" \r" | b" \n" | b"\r\n") {
                    return None;
                }
                self.pos += 20;
                let id = first.checked_add(index)?;
                if entries.last().is_some_and(|&(last, _)| last >= id) {
                    return None;
                }
                let entry = if in_use {
                    XrefEntry::Normal { offset, generation }
                } else {
                    XrefEntry::Free
                };
                entries.push((id, entry));
            }
        }
        self.space()?;
        (!entries.is_empty()).then_some(entries)
    }

    /// Exactly `n` digits.
    fn digits_exactly(&mut self, n: usize) -> Option<u64> {
        let start = self.pos;
        let value = self.digits()?;
        (self.pos - start == n).then_some(value)
    }

    /// `number generation obj`, the object, and `endobj`.
    fn indirect_object(&mut self) -> Option<(ObjectId, Object)> {
        self.space()?;
        let number = u32::try_from(self.digits()?).ok()?;
        self.space()?;
        let generation = u16::try_from(self.digits()?).ok()?;
        self.space()?;
        self.keyword(b"obj")?;
        self.space()?;
        let object = if self.rest().starts_with(b"<<") {
            let dict = self.dictionary(0)?;
            let before = self.pos;
            self.space()?;
            if self.keyword(b"stream").is_some() {
                self.skip_blanks();
                self.eol()?;
                Object::Stream(self.stream_data(dict)?)
            } else {
                self.pos = before;
                Object::Dictionary(dict)
            }
        } else {
            self.object(0)?
        };
        self.space()?;
        self.keyword(b"endobj")?;
        Some(((number, generation), object))
    }

    /// A stream's data, after `stream` and its end of line, and `endstream`.
    fn stream_data(&mut self, dict: Dictionary) -> Option<Stream> {
        let Ok(&Object::Integer(length)) = dict.get(b"Length") else {
            return None;
        };
        let length = usize::try_from(length).ok()?;
        let content = self.rest().get(..length)?.to_vec();
        self.pos += length;
        if matches!(self.peek(), Some(b'\r' | b'\n')) {
            self.eol()?;
        }
        self.keyword(b"endstream")?;
        Some(Stream::new(dict, content))
    }

    /// A direct object and the white space after it.
    fn object(&mut self, depth: usize) -> Option<Object> {
        if depth >= MAX_DEPTH {
            return None;
        }
        let object = match self.peek()? {
            b'/' => Object::Name(self.name()?),
            b'(' => Object::String(self.literal_string()?, StringFormat::Literal),
            b'<' if self.rest().starts_with(b"<<") => Object::Dictionary(self.dictionary(depth)?),
            b'<' => Object::String(self.hex_string()?, StringFormat::Hexadecimal),
            b'[' => {
                self.pos += 1;
                self.space()?;
                let mut items = Vec::new();
                while self.peek()? != b']' {
                    items.push(self.object(depth + 1)?);
                }
                self.pos += 1;
                Object::Array(items)
            }
            b'0'..=b'9' | b'+' | b'-' | b'.' => self.number_or_reference()?,
            b't' => self.keyword(b"true").map(|()| Object::Boolean(true))?,
            b'f' => self.keyword(b"false").map(|()| Object::Boolean(false))?,
            b'n' => self.keyword(b"null").map(|()| Object::Null)?,
            _ => return None,
        };
        self.space()?;
        Some(object)
    }

    /// `<< /Key value ... >>`; a key given twice keeps its first place and last value, as in
    /// `lopdf`.
    fn dictionary(&mut self, depth: usize) -> Option<Dictionary> {
        if depth >= MAX_DEPTH {
            return None;
        }
        self.expect(b"<<")?;
        self.space()?;
        let mut dict = Dictionary::new();
        while !self.rest().starts_with(b">>") {
            let key = self.name()?;
            self.space()?;
            let value = self.object(depth + 1)?;
            dict.set(key, value);
        }
        self.pos += 2;
        Some(dict)
    }

    /// A name without its slash, `#xx` escapes decoded.
    fn name(&mut self) -> Option<Vec<u8>> {
        self.expect(b"/")?;
        let mut name = Vec::new();
        loop {
            let rest = self.rest();
            let run = rest
                .iter()
                .position(|&c| c == b'#' || !is_regular(c))
                .unwrap_or(rest.len());
            name.extend_from_slice(&rest[..run]);
            self.pos += run;
            if self.peek() != Some(b'#') {
                return Some(name);
            }
            let high = hex_value(*self.bytes.get(self.pos + 1)?)?;
            let low = hex_value(*self.bytes.get(self.pos + 2)?)?;
            name.push(high << 4 | low);
            self.pos += 3;
        }
    }

    /// `( ... )` with its escapes decoded and its ends of line read as LF.
    fn literal_string(&mut self) -> Option<Vec<u8>> {
        self.expect(b"(")?;
        let mut text = Vec::new();
        let mut open = 0usize;
        loop {
            let rest = self.rest();
            let run = rest
                .iter()
                .position(|&c| matches!(c, b'(' | b')' | b'\\' | b'\r' | b'\n'))?;
            text.extend_from_slice(&rest[..run]);
            self.pos += run;
            match self.peek()? {
                b'(' => {
                    open += 1;
                    if open > MAX_PARENS {
                        return None;
                    }
                    text.push(b'(');
                    self.pos += 1;
                }
                b')' => {
                    self.pos += 1;
                    if open == 0 {
                        return Some(text);
                    }
                    open -= 1;
                    text.push(b')');
                }
                b'\r' | b'\n' => {
                    self.eol()?;
                    text.push(b'\n');
                }
                _ => {
                    self.pos += 1;
                    self.escape(&mut text)?;
                }
            }
        }
    }

    /// What follows a backslash in a literal string.
    fn escape(&mut self, text: &mut Vec<u8>) -> Option<()> {
        let c = self.peek()?;
        if (b'0'..=b'7').contains(&c) {
            let mut value: u16 = 0;
            let mut count = 0;
            while count < 3 {
                match self.peek() {
                    Some(d @ b'0'..=b'7') => value = value * 8 + u16::from(d - b'0'),
                    _ => break,
                }
                self.pos += 1;
                count += 1;
            }
            // Overflow is ignored, as the standard says.
            text.push(value.to_le_bytes()[0]);
            return Some(());
        }
        if c == b'\r' || c == b'\n' {
            return self.eol();
        }
        self.pos += 1;
        text.push(match c {
            b'n' => b'\n',
            b'r' => b'\r',
            b't' => b'\t',
            b'b' => b'\x08',
            b'f' => b'\x0C',
            other => other,
        });
        Some(())
    }

    /// `< hex digits >`, white space between them allowed; an odd last digit is the high
    /// half of a byte.
    fn hex_string(&mut self) -> Option<Vec<u8>> {
        self.expect(b"<")?;
        let mut bytes = Vec::new();
        let mut high: Option<u8> = None;
        loop {
            let c = self.peek()?;
            self.pos += 1;
            if c == b'>' {
                break;
            }
            if is_white(c) {
                continue;
            }
            let value = hex_value(c)?;
            match high.take() {
                None => high = Some(value),
                Some(h) => bytes.push(h << 4 | value),
            }
        }
        if let Some(h) = high {
            bytes.push(h << 4);
        }
        Some(bytes)
    }

    /// An integer, a real or `number generation R`, read as `lopdf` reads them.
    fn number_or_reference(&mut self) -> Option<Object> {
        let start = self.pos;
        if let Some(reference) = self.reference() {
            return Some(reference);
        }
        self.pos = start;
        let negative = match self.peek()? {
            b'+' => {
                self.pos += 1;
                false
            }
            b'-' => {
                self.pos += 1;
                true
            }
            _ => false,
        };
        let whole = self.pos;
        let integer = self.digits();
        if self.peek() == Some(b'.') {
            self.pos += 1;
            let fraction = self.digits();
            if (integer.is_none() && fraction.is_none())
                || self.peek().is_some_and(|c| c == b'-' || is_regular(c))
            {
                return None;
            }
            let text = std::str::from_utf8(&self.bytes[start..self.pos]).ok()?;
            return text.parse::<f32>().ok().map(Object::Real);
        }
        if self.pos == whole || self.peek().is_some_and(is_regular) {
            return None;
        }
        let magnitude = integer?;
        let value = if negative {
            0i64.checked_sub_unsigned(magnitude)?
        } else {
            i64::try_from(magnitude).ok()?
        };
        Some(Object::Integer(value))
    }

    /// `number generation R`, or `None` with the cursor anywhere.
    fn reference(&mut self) -> Option<Object> {
        let number = u32::try_from(self.digits()?).ok()?;
        if !self.peek().is_some_and(is_white) {
            return None;
        }
        self.space()?;
        let generation = u16::try_from(self.digits()?).ok()?;
        self.space()?;
        self.keyword(b"R")?;
        Some(Object::Reference((number, generation)))
    }
}

#[cfg(test)]
pub(super) mod tests;
