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
    // Every truncation and every byte changed in the table or trailer: either both
    // readers agree, or the quick one gives up.
    let xref = find_last(&good, b"xref").expect("table");
    for cut in 0..good.len() {
        if let Some(quick) = read(&good[..cut]) {
            assert_eq!(quick.objects, strict(&good[..cut]).objects, "cut at {cut}");
        }
    }
    for at in xref..good.len() {
        let mut bad = good.clone();
        bad[at] = b'9';
        if read(&bad).is_some() {
            same_as_lopdf(&bad);
        }
    }
}
