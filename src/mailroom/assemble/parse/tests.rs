//! The quick reader against lopdf's strict load, on hand-made files.

use lopdf::LoadOptions;

use super::*;

/// A PDF of `bodies` as objects 1, 2, ... in a classic table, `extra` added to the
/// trailer.
fn pdf(bodies: &[&[u8]], extra: &str) -> Vec<u8> {
    let mut out = b"%PDF-1.7\n%\xe2\xe3\xcf\xd3\n".to_vec();
    let mut offsets = Vec::new();
    for (i, body) in bodies.iter().enumerate() {
        offsets.push(out.len());
        out.extend_from_slice(format!("{} 0 obj\n", i + 1).as_bytes());
        out.extend_from_slice(body);
        out.extend_from_slice(b"\nendobj\n\n");
    }
    let xref = out.len();
    out.extend_from_slice(
        format!("xref\n0 {}\n0000000000 65535 f\r\n", bodies.len() + 1).as_bytes(),
    );
    for offset in offsets {
        out.extend_from_slice(format!("{offset:010} 00000 n\r\n").as_bytes());
    }
    out.extend_from_slice(
        format!(
            "trailer\n<< /Size {} /Root 1 0 R{extra} >>\nstartxref\n{xref}\n%%EOF\n",
            bodies.len() + 1
        )
        .as_bytes(),
    );
    out
}

fn strict(bytes: &[u8]) -> Document {
    let options = LoadOptions {
        strict: true,
        ..LoadOptions::default()
    };
    Document::load_mem_with_options(bytes, options).expect("lopdf reads it")
}

/// Both readers give the same document.
pub(in crate::mailroom::assemble) fn same_as_lopdf(bytes: &[u8]) {
    let quick = read(bytes).expect("the quick reader reads it");
    let lopdf = strict(bytes);
    assert_eq!(quick.objects, lopdf.objects);
    assert_eq!(quick.trailer, lopdf.trailer);
    // Equality of dictionaries ignores the order of keys (and -0.0 == 0.0); the bytes
    // each object is written as do not.
    let bytes = |object: &Object| {
        let mut out = Vec::new();
        lopdf::Writer::write_object(&mut out, object).expect("write to a Vec");
        out
    };
    for (id, object) in &quick.objects {
        assert_eq!(bytes(object), bytes(&lopdf.objects[id]), "object {id:?}");
    }
    assert_eq!(
        bytes(&Object::Dictionary(quick.trailer.clone())),
        bytes(&Object::Dictionary(lopdf.trailer.clone()))
    );
    assert_eq!(quick.xref_section_count, lopdf.xref_section_count);
    assert_eq!(quick.linearization.is_some(), lopdf.linearization.is_some());
    assert_eq!(quick.version, lopdf.version);
    assert_eq!(quick.binary_mark, lopdf.binary_mark);
    assert_eq!(quick.max_id, lopdf.max_id);
    assert_eq!(quick.xref_start, lopdf.xref_start);
    assert_eq!(
        format!("{:?}", quick.reference_table),
        format!("{:?}", lopdf.reference_table)
    );
    assert!(lopdf.xref_recovery.is_none());
}

#[test]
fn every_kind_of_object_is_read_as_lopdf_reads_it() {
    let bytes = pdf(
        &[
            b"<< /Type /Catalog /Pages 2 0 R /Lang (en-US) >>",
            b"<</Type/Pages/Kids[3 0 R]/Count 1>>",
            b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 595.2756 841.8898] \
              /Contents 4 0 R /A#20B /N /Nums [-.5 +2 -3. 4.25 0 -0 12 0 R 7] >>",
            b"<< /Length 12 /Filter /FlateDecode >>\nstream\r\nBT (a) Tj ET\r\nendstream",
            b"[(plain) (nested (parens) here) (esc\\n\\r\\t\\b\\f\\(\\)\\\\ \\101\\7\\0053 \\q) \
              (line\r\nbreaks\rand\\\nsplice) <48 65 6C6c 6f> <ABC> <> true false null [] << >>]",
            b"<< /Dup 1 /Other 2 /Dup 3 >>",
            b"42",
            b"(a string alone)",
            b"<< /Length 0 >>\nstream\nendstream",
        ],
        " /Info 6 0 R",
    );
    same_as_lopdf(&bytes);
    let doc = read(&bytes).expect("read");
    let page = doc.objects[&(3, 0)].as_dict().expect("page");
    assert!(page.has(b"A B"), "a #20 escape in a name is a space");
}

#[test]
fn what_typst_never_writes_is_left_to_lopdf() {
    let cases: Vec<(&str, Vec<u8>)> = vec![
        (
            "a comment in an object",
            pdf(&[b"<< /Type /Catalog % note\n >>"], ""),
        ),
        (
            "a length by reference",
            pdf(
                &[
                    b"<< /Type /Catalog >>",
                    b"<< /Length 3 0 R >>\nstream\nabc\nendstream",
                    b"3",
                ],
                "",
            ),
        ),
        (
            "an earlier revision",
            pdf(&[b"<< /Type /Catalog >>"], " /Prev 9"),
        ),
        (
            "an object stream",
            pdf(
                &[
                    b"<< /Type /Catalog >>",
                    b"<< /Type /ObjStm /N 0 /First 0 /Length 0 >>\nstream\n\nendstream",
                ],
                "",
            ),
        ),
        ("a real with an exponent", pdf(&[b"<< /X 1.5e3 >>"], "")),
        (
            "encryption",
            pdf(&[b"<< /Type /Catalog >>"], " /Encrypt 1 0 R"),
        ),
        (
            "a hybrid file's cross-reference stream",
            pdf(&[b"<< /Type /Catalog >>"], " /XRefStm 9"),
        ),
        (
            "a linearization dictionary",
            pdf(
                &[b"<< /Linearized 1 /L 100 /H [0 0] /O 1 /E 0 /N 1 /T 0 >>"],
                "",
            ),
        ),
        (
            "a # not followed by two hex digits",
            pdf(&[b"<< /A#2 1 >>"], ""),
        ),
        (
            "arrays nested deeper than the quick reader goes",
            pdf(
                &[format!("{}{}", "[".repeat(70), "]".repeat(70)).as_bytes()],
                "",
            ),
        ),
        (
            "parentheses nested deeper than the quick reader goes",
            pdf(
                &[format!("({}{})", "(".repeat(70), ")".repeat(70)).as_bytes()],
                "",
            ),
        ),
        ("an object numbered otherwise than its entry", {
            let mut bytes = pdf(&[b"<< /Type /Catalog >>", b"(a)"], "");
            let at = find_last(&bytes, b"2 0 obj").expect("object 2");
            bytes[at] = b'3';
            bytes
        }),
        ("a section with more entries than it says", {
            let bytes = pdf(&[b"<< /Type /Catalog >>", b"(a)"], "");
            let text = String::from_utf8_lossy(&bytes).replace("\n0 3\n", "\n0 2\n");
            text.into_bytes()
        }),
        ("21-byte entries", {
            let bytes = pdf(&[b"<< /Type /Catalog >>"], "");
            let text = String::from_utf8_lossy(&bytes).replace(" n\r\n", " n \r\n");
            text.into_bytes()
        }),
    ];
    for (what, bytes) in cases {
        assert!(read(&bytes).is_none(), "{what}: the quick reader gives up");
    }
    // A file lopdf writes with a cross-reference stream.
    let mut doc = strict(&pdf(&[b"<< /Type /Catalog >>"], ""));
    doc.reference_table.cross_reference_type = XrefType::CrossReferenceStream;
    let mut bytes = Vec::new();
    doc.save_to(&mut bytes).expect("save");
    assert!(
        read(&bytes).is_none(),
        "a cross-reference stream is left to lopdf"
    );
    strict(&bytes);
}

#[test]
fn a_damaged_file_is_never_read_as_another() {
    let good = pdf(&[b"<< /Type /Catalog >>", b"(text)"], "");
    assert!(read(&good).is_some());
    // Every truncation, and every byte of the table, trailer and end changed to one of
    // several tokens' bytes: either both readers agree, or the quick one gives up.
    for cut in 0..good.len() {
        if read(&good[..cut]).is_some() {
            same_as_lopdf(&good[..cut]);
        }
    }
    let table = xref_start(&good).expect("the table's offset");
    assert!(good[table..].starts_with(b"xref\n"));
    let mut read_changed = 0;
    for at in table..good.len() {
        for byte in *b"90 \r\nf/<>R" {
            let mut bad = good.clone();
            bad[at] = byte;
            if bad != good && read(&bad).is_some() {
                same_as_lopdf(&bad);
                read_changed += 1;
            }
        }
    }
    // Some changes leave a readable file (an offset one byte early, another /Root): the
    // comparison above ran on them.
    assert!(read_changed > 0);
}
