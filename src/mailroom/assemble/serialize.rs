//! Objects written as bytes, exactly as `lopdf::Writer::write_object` writes them (its
//! compact style), straight into a byte buffer. lopdf writes token by token, and a name
//! byte by byte, through a `dyn Write`: that was about a third of assembling a batch once
//! parsing was quick (callgrind on `examples/assemble_batch.rs`). A unit test compares both
//! on every object of every kind of rendered letter (`tests.rs`).

use std::io::Write;

use lopdf::{Dictionary, Object, StringFormat};

/// Appends `object` to `out`.
pub(super) fn object(out: &mut Vec<u8>, object: &Object) {
    match object {
        Object::Null => out.extend_from_slice(b"null"),
        Object::Boolean(true) => out.extend_from_slice(b"true"),
        Object::Boolean(false) => out.extend_from_slice(b"false"),
        Object::Integer(value) => integer(out, *value),
        Object::Real(value) => {
            // Every digit, no exponent; a whole number keeps a point so it reads back as
            // a real (lopdf's rule).
            let start = out.len();
            // Writing into a Vec cannot fail.
            let _ = write!(out, "{value}");
            if value.is_finite() && !out[start..].contains(&b'.') {
                out.extend_from_slice(b".0");
            }
        }
        Object::Name(name) => self::name(out, name),
        Object::String(text, StringFormat::Literal) => literal(out, text),
        Object::String(text, StringFormat::Hexadecimal) => {
            out.push(b'<');
            for &byte in text {
                out.extend_from_slice(&hex_byte(byte));
            }
            out.push(b'>');
        }
        Object::Array(items) => {
            out.push(b'[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 && needs_separator(item) {
                    out.push(b' ');
                }
                self::object(out, item);
            }
            out.push(b']');
        }
        Object::Dictionary(dict) => dictionary(out, dict),
        Object::Stream(stream) => {
            dictionary(out, &stream.dict);
            out.extend_from_slice(b"stream\n");
            out.extend_from_slice(&stream.content);
            out.extend_from_slice(b"\nendstream");
        }
        Object::Reference((number, generation)) => {
            integer(out, i64::from(*number));
            out.push(b' ');
            integer(out, i64::from(*generation));
            out.extend_from_slice(b" R");
        }
    }
}

/// Appends `dict` to `out`.
pub(super) fn dictionary(out: &mut Vec<u8>, dict: &Dictionary) {
    out.extend_from_slice(b"<<");
    for (key, value) in dict {
        name(out, key);
        if needs_separator(value) {
            out.push(b' ');
        }
        object(out, value);
    }
    out.extend_from_slice(b">>");
}

/// Whether a space must come before `object` after another token.
fn needs_separator(object: &Object) -> bool {
    matches!(
        object,
        Object::Null
            | Object::Boolean(_)
            | Object::Integer(_)
            | Object::Real(_)
            | Object::Reference(_)
    )
}

/// Appends `value` in decimal.
pub(super) fn integer(out: &mut Vec<u8>, value: i64) {
    out.extend_from_slice(itoa::Buffer::new().format(value).as_bytes());
}

/// Two upper-case hexadecimal digits.
fn hex_byte(byte: u8) -> [u8; 2] {
    const DIGITS: &[u8; 16] = b"0123456789ABCDEF";
    [
        DIGITS[usize::from(byte >> 4)],
        DIGITS[usize::from(byte & 0xF)],
    ]
}

/// A name: white space, delimiters, `#` and bytes outside `!`..`~` as `#XX`.
fn name(out: &mut Vec<u8>, name: &[u8]) {
    let plain = |byte: u8| {
        (33..=126).contains(&byte)
            && !matches!(
                byte,
                b'(' | b')' | b'<' | b'>' | b'[' | b']' | b'{' | b'}' | b'/' | b'%' | b'#'
            )
    };
    out.push(b'/');
    if name.iter().all(|&byte| plain(byte)) {
        out.extend_from_slice(name);
        return;
    }
    for &byte in name {
        if plain(byte) {
            out.push(byte);
        } else {
            out.push(b'#');
            out.extend_from_slice(&hex_byte(byte));
        }
    }
}

/// A literal string: each backslash, CR (as `\r`) and unbalanced parenthesis escaped.
fn literal(out: &mut Vec<u8>, text: &[u8]) {
    out.push(b'(');
    if !text
        .iter()
        .any(|&b| matches!(b, b'(' | b')' | b'\\' | b'\r'))
    {
        out.extend_from_slice(text);
        out.push(b')');
        return;
    }
    let mut escape = vec![false; text.len()];
    let mut open = Vec::new();
    for (i, &byte) in text.iter().enumerate() {
        match byte {
            b'(' => open.push(i),
            // A `)` closes the last open `(`; one with none open is escaped.
            b')' if open.pop().is_none() => escape[i] = true,
            b'\\' | b'\r' => escape[i] = true,
            _ => {}
        }
    }
    for i in open {
        escape[i] = true;
    }
    for (&byte, escaped) in text.iter().zip(escape) {
        if escaped {
            out.push(b'\\');
            out.push(if byte == b'\r' { b'r' } else { byte });
        } else {
            out.push(byte);
        }
    }
    out.push(b')');
}

#[cfg(test)]
pub(super) mod tests {
    use super::*;

    /// Both writers give the same bytes for `value`.
    pub(in crate::mailroom::assemble) fn same_as_lopdf(value: &Object) {
        let mut ours = Vec::new();
        object(&mut ours, value);
        let mut theirs = Vec::new();
        lopdf::Writer::write_object(&mut theirs, value).expect("lopdf writes to a Vec");
        assert_eq!(
            String::from_utf8_lossy(&ours),
            String::from_utf8_lossy(&theirs)
        );
        assert_eq!(ours, theirs);
    }

    #[test]
    fn every_kind_of_object_is_written_as_lopdf_writes_it() {
        let mut dict = Dictionary::new();
        dict.set("Type", Object::Name(b"Page".to_vec()));
        dict.set(&b"A B#(x)\x80"[..], Object::Null);
        dict.set("N", Object::Integer(-42));
        dict.set("R", Object::Reference((12, 3)));
        dict.set("Sub", Object::Dictionary(Dictionary::new()));
        for value in [
            Object::Null,
            Object::Boolean(true),
            Object::Boolean(false),
            Object::Integer(0),
            Object::Integer(i64::MIN),
            Object::Real(0.0),
            Object::Real(-1.5),
            Object::Real(595.2756),
            Object::Real(1e-7),
            Object::Real(3e12),
            Object::Name(Vec::new()),
            Object::Name(b"Plain".to_vec()),
            Object::Name(b"with space/and#hash\x00\x7f\xff".to_vec()),
            Object::string_literal("plain"),
            Object::string_literal("balanced (parens) here"),
            Object::string_literal("unbalanced ) and ( and (( ) \\ back \r cr \n lf"),
            Object::string_literal(")("),
            Object::string_literal(Vec::<u8>::new()),
            Object::String(vec![0, 0x7f, 0xab, 0xff], StringFormat::Hexadecimal),
            Object::String(Vec::new(), StringFormat::Hexadecimal),
            Object::Array(vec![
                Object::Integer(1),
                Object::Integer(2),
                Object::Name(b"N".to_vec()),
                Object::Reference((3, 0)),
                Object::Array(Vec::new()),
                Object::Real(2.5),
                Object::string_literal("s"),
                Object::Null,
            ]),
            Object::Array(Vec::new()),
            Object::Dictionary(dict.clone()),
            Object::Stream(lopdf::Stream::new(dict, b"BT (x) Tj ET".to_vec())),
            Object::Reference((0, 0)),
        ] {
            same_as_lopdf(&value);
        }
    }
}
