//! The batch file as it is written: objects streamed out one at a time, then the xref
//! table and trailer; and the batch-level pieces written at the end (number and name trees,
//! XMP metadata, document info).
//!
//! Invariants: object numbers are handed out 1, 2, 3, … by [`PdfOut::reserve`] and every
//! reserved number is written exactly once before [`PdfOut::finish`], which refuses
//! otherwise; an object's bytes are final when written (nothing is patched later), so the
//! writer never seeks and memory holds only one offset per object.

use std::collections::HashMap;
use std::io::{self, BufWriter, Write};

use lopdf::{Dictionary, Object, StringFormat};
use sha2::{Digest, Sha256};

use super::serialize;

/// The PDF header: version 1.7 (PDF/A-2) and the binary comment PDF/A asks for (four bytes
/// above 127), as Typst writes it.
const HEADER: &[u8] = b"%PDF-1.7\n%\x80\x80\x80\x80\n";

/// Entries per leaf of a number or name tree: small arrays for every reader.
const TREE_LEAF: usize = 128;

/// A byte sink that counts and hashes what goes through it.
struct Counted<W: Write> {
    inner: BufWriter<W>,
    written: u64,
    sha256: Sha256,
}

impl<W: Write> Write for Counted<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = self.inner.write(buf)?;
        self.written += n as u64;
        self.sha256.update(&buf[..n]);
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}

/// What writing the file came to.
pub(super) struct Finished {
    /// Bytes written.
    pub bytes: u64,
    /// SHA-256 of the bytes written.
    pub sha256: [u8; 32],
}

/// The output PDF being written.
pub(super) struct PdfOut<W: Write> {
    out: Counted<W>,
    /// Byte offset of each object by number − 1 (`None`: reserved, not yet written).
    offsets: Vec<Option<u64>>,
    /// Streams without references already written, by a hash of their bytes: an identical
    /// one (a font subset, the ICC profile) is written once and shared.
    shared: HashMap<[u8; 32], u32>,
    /// Streams shared instead of written again, and the bytes that saved.
    pub(super) deduped: (usize, u64),
    /// One object serialized before it goes out in one write (each token through the
    /// hashing writer would cost more than the copy).
    scratch: Vec<u8>,
}

impl<W: Write> PdfOut<W> {
    /// Starts the file: writes the header.
    pub(super) fn new(writer: W) -> io::Result<Self> {
        let mut out = Counted {
            inner: BufWriter::with_capacity(1 << 18, writer),
            written: 0,
            sha256: Sha256::new(),
        };
        out.write_all(HEADER)?;
        Ok(Self {
            out,
            offsets: Vec::new(),
            shared: HashMap::new(),
            deduped: (0, 0),
            scratch: Vec::with_capacity(1 << 16),
        })
    }

    /// A new object number, to be written later.
    pub(super) fn reserve(&mut self) -> u32 {
        self.offsets.push(None);
        // More objects than u32 numbers cannot be reached: each takes bytes on disk, and
        // PDF readers stop at 8 388 607 anyway.
        u32::try_from(self.offsets.len()).unwrap_or(u32::MAX)
    }

    /// The number of an already written stream with the same dictionary and data, or
    /// the key to [`PdfOut::remember`] it under once it has a number.
    pub(super) fn find_shared(&mut self, stream: &lopdf::Stream) -> Result<u32, [u8; 32]> {
        let mut hash = Sha256::new();
        let mut dict = Vec::new();
        serialize::dictionary(&mut dict, &stream.dict);
        hash.update((dict.len() as u64).to_le_bytes());
        hash.update(&dict);
        hash.update(&stream.content);
        let key: [u8; 32] = hash.finalize().into();
        match self.shared.get(&key) {
            Some(&existing) => {
                self.deduped.0 += 1;
                self.deduped.1 += stream.content.len() as u64;
                Ok(existing)
            }
            None => Err(key),
        }
    }

    /// Remembers that the stream hashed to `key` is object `number`.
    pub(super) fn remember(&mut self, key: [u8; 32], number: u32) {
        self.shared.insert(key, number);
    }

    /// Writes object `number` (reserved before). A stream's `/Length` is set to its data.
    pub(super) fn write(&mut self, number: u32, object: &mut Object) -> io::Result<()> {
        let slot = number
            .checked_sub(1)
            .and_then(|i| self.offsets.get_mut(i as usize))
            .filter(|slot| slot.is_none())
            .ok_or_else(|| io::Error::other(format!("object {number} written twice")))?;
        *slot = Some(self.out.written);
        let mut buf = std::mem::take(&mut self.scratch);
        buf.clear();
        serialize::integer(&mut buf, i64::from(number));
        buf.extend_from_slice(b" 0 obj\n");
        match object {
            Object::Stream(stream) => {
                stream.dict.set("Length", stream.content.len() as i64);
                serialize::dictionary(&mut buf, &stream.dict);
                buf.extend_from_slice(b"\nstream\n");
                self.out.write_all(&buf)?;
                self.out.write_all(&stream.content)?;
                buf.clear();
                buf.extend_from_slice(b"\nendstream");
            }
            other => serialize::object(&mut buf, other),
        }
        buf.extend_from_slice(b"\nendobj\n");
        let written = self.out.write_all(&buf);
        self.scratch = buf;
        written
    }

    /// Writes the cross-reference table and the trailer, and flushes. The trailer `/ID` is
    /// `document_id` and the first 16 bytes of the SHA-256 of every byte before the
    /// trailer: the same objects give the same id, any change gives another.
    pub(super) fn finish(
        mut self,
        root: u32,
        info: u32,
        document_id: [u8; 16],
    ) -> io::Result<Finished> {
        if let Some(i) = self.offsets.iter().position(Option::is_none) {
            return Err(io::Error::other(format!(
                "object {} was reserved but never written",
                i + 1
            )));
        }
        let start = self.out.written;
        let size = self.offsets.len() + 1;
        let mut table = Vec::with_capacity(32 + 20 * size);
        write!(table, "xref\n0 {size}\n0000000000 65535 f \n")?;
        for &offset in self.offsets.iter().flatten() {
            xref_entry(&mut table, offset);
        }
        self.out.write_all(&table)?;
        let mut trailer = Dictionary::new();
        trailer.set("Size", size as i64);
        trailer.set("Root", Object::Reference((root, 0)));
        trailer.set("Info", Object::Reference((info, 0)));
        let content = self.out.sha256.clone().finalize();
        let ids = [&document_id[..], &content[..16]]
            .iter()
            .map(|i| Object::String(i.to_vec(), StringFormat::Hexadecimal))
            .collect();
        trailer.set("ID", Object::Array(ids));
        self.out.write_all(b"trailer\n")?;
        let mut bytes = Vec::new();
        serialize::dictionary(&mut bytes, &trailer);
        self.out.write_all(&bytes)?;
        write!(self.out, "\nstartxref\n{start}\n%%EOF\n")?;
        self.out.flush()?;
        let Counted {
            inner,
            written,
            sha256,
        } = self.out;
        // Flushed above; the sink itself goes back to the caller's scope.
        drop(inner.into_inner().map_err(|e| e.into_error())?);
        Ok(Finished {
            bytes: written,
            sha256: sha256.finalize().into(),
        })
    }
}

/// Appends a cross-reference table entry: `offset` in ten digits, generation 0, in use.
fn xref_entry(table: &mut Vec<u8>, offset: u64) {
    let mut digits = itoa::Buffer::new();
    let digits = digits.format(offset).as_bytes();
    table.extend(std::iter::repeat_n(
        b'0',
        10usize.saturating_sub(digits.len()),
    ));
    table.extend_from_slice(digits);
    table.extend_from_slice(b" 00000 n \n");
}

/// Writes a number tree (`/Nums`) or name tree (`/Names`, keys sorted) of `entries` and
/// returns its root's number: one object when it is small, else a root whose `/Kids` are
/// leaves of [`TREE_LEAF`] entries with their `/Limits`.
pub(super) fn write_tree<W: Write>(
    out: &mut PdfOut<W>,
    kind: &'static str,
    entries: Vec<(Object, Object)>,
) -> io::Result<u32> {
    let root = out.reserve();
    let pairs = |chunk: &[(Object, Object)]| -> Object {
        Object::Array(
            chunk
                .iter()
                .flat_map(|(k, v)| [k.clone(), v.clone()])
                .collect(),
        )
    };
    let mut dict = Dictionary::new();
    if entries.len() <= TREE_LEAF {
        dict.set(kind, pairs(&entries));
        out.write(root, &mut Object::Dictionary(dict))?;
        return Ok(root);
    }
    let mut kids = Vec::new();
    for chunk in entries.chunks(TREE_LEAF) {
        let leaf = out.reserve();
        let mut leaf_dict = Dictionary::new();
        if let (Some(first), Some(last)) = (chunk.first(), chunk.last()) {
            leaf_dict.set(
                "Limits",
                Object::Array(vec![first.0.clone(), last.0.clone()]),
            );
        }
        leaf_dict.set(kind, pairs(chunk));
        out.write(leaf, &mut Object::Dictionary(leaf_dict))?;
        kids.push(Object::Reference((leaf, 0)));
    }
    dict.set("Kids", Object::Array(kids));
    out.write(root, &mut Object::Dictionary(dict))?;
    Ok(root)
}

/// A PDF text string: literal when it is printable ASCII, else UTF-16BE with a byte order
/// mark (as Typst writes the title).
pub(super) fn text_string(text: &str) -> Object {
    if text.bytes().all(|b| (b' '..=b'~').contains(&b)) {
        Object::String(text.as_bytes().to_vec(), StringFormat::Literal)
    } else {
        let mut bytes = vec![0xFE, 0xFF];
        for unit in text.encode_utf16() {
            bytes.extend_from_slice(&unit.to_be_bytes());
        }
        Object::String(bytes, StringFormat::Hexadecimal)
    }
}

/// What the XMP packet says about the batch.
pub(super) struct Xmp<'a> {
    pub title: &'a str,
    pub author: &'a str,
    pub lang: &'a str,
    /// `YYYY-MM-DD`: the mail date, at midnight UTC.
    pub date: &'a str,
    pub pages: usize,
    pub document_id: &'a str,
    pub instance_id: &'a str,
}

/// The PDF/A extension schemas Typst declares (for the xmpMM, pdf and pdfuaid properties
/// it writes), kept word for word so the batch declares what its letters declare.
const EXTENSION_SCHEMAS: &str = concat!(
    "<pdfaExtension:schemas><rdf:Bag>",
    "<rdf:li rdf:parseType=\"Resource\"><pdfaSchema:schema>XMP Media Management schema</pdfaSchema:schema><pdfaSchema:namespaceURI>http://ns.adobe.com/xap/1.0/mm/</pdfaSchema:namespaceURI><pdfaSchema:prefix>xmpMM</pdfaSchema:prefix><pdfaSchema:property><rdf:Seq>",
    "<rdf:li rdf:parseType=\"Resource\"><pdfaProperty:category>internal</pdfaProperty:category><pdfaProperty:description>UUID based identifier for specific incarnation of a document</pdfaProperty:description><pdfaProperty:name>InstanceID</pdfaProperty:name><pdfaProperty:valueType>Text</pdfaProperty:valueType></rdf:li>",
    "</rdf:Seq></pdfaSchema:property></rdf:li>",
    "<rdf:li rdf:parseType=\"Resource\"><pdfaSchema:schema>Adobe PDF schema</pdfaSchema:schema><pdfaSchema:namespaceURI>http://ns.adobe.com/pdf/1.3/</pdfaSchema:namespaceURI><pdfaSchema:prefix>pdf</pdfaSchema:prefix><pdfaSchema:property><rdf:Seq>",
    "<rdf:li rdf:parseType=\"Resource\"><pdfaProperty:category>external</pdfaProperty:category><pdfaProperty:description>Keywords associated with the document</pdfaProperty:description><pdfaProperty:name>Keywords</pdfaProperty:name><pdfaProperty:valueType>Text</pdfaProperty:valueType></rdf:li>",
    "<rdf:li rdf:parseType=\"Resource\"><pdfaProperty:category>internal</pdfaProperty:category><pdfaProperty:description>Version of the PDF specification to which the document conforms</pdfaProperty:description><pdfaProperty:name>PDFVersion</pdfaProperty:name><pdfaProperty:valueType>Text</pdfaProperty:valueType></rdf:li>",
    "<rdf:li rdf:parseType=\"Resource\"><pdfaProperty:category>internal</pdfaProperty:category><pdfaProperty:description>Name of the application that created the PDF document</pdfaProperty:description><pdfaProperty:name>Producer</pdfaProperty:name><pdfaProperty:valueType>Text</pdfaProperty:valueType></rdf:li>",
    "<rdf:li rdf:parseType=\"Resource\"><pdfaProperty:category>internal</pdfaProperty:category><pdfaProperty:description>Whether the document has been trapped</pdfaProperty:description><pdfaProperty:name>Trapped</pdfaProperty:name><pdfaProperty:valueType>Text</pdfaProperty:valueType></rdf:li>",
    "</rdf:Seq></pdfaSchema:property></rdf:li>",
    "<rdf:li rdf:parseType=\"Resource\"><pdfaSchema:schema>PDF/UA Identification schema</pdfaSchema:schema><pdfaSchema:namespaceURI>http://www.aiim.org/pdfua/ns/id/</pdfaSchema:namespaceURI><pdfaSchema:prefix>pdfuaid</pdfaSchema:prefix><pdfaSchema:property><rdf:Seq>",
    "<rdf:li rdf:parseType=\"Resource\"><pdfaProperty:category>internal</pdfaProperty:category><pdfaProperty:description>Part Number of ISO 14289 (PDF/UA)</pdfaProperty:description><pdfaProperty:name>part</pdfaProperty:name><pdfaProperty:valueType>Integer</pdfaProperty:valueType></rdf:li>",
    "</rdf:Seq></pdfaSchema:property></rdf:li>",
    "</rdf:Bag></pdfaExtension:schemas>",
);

impl Xmp<'_> {
    /// The XMP packet, in the shape Typst writes for a letter.
    pub(super) fn packet(&self) -> String {
        let when = format!("{}T00:00:00+00:00", self.date);
        let creator = if self.author.trim().is_empty() {
            String::new()
        } else {
            format!(
                "<dc:creator><rdf:Seq><rdf:li>{}</rdf:li></rdf:Seq></dc:creator>",
                xml(self.author)
            )
        };
        format!(
            "<?xpacket begin=\"\u{feff}\" id=\"W5M0MpCehiHzreSzNTczkc9d\"?>\
             <x:xmpmeta xmlns:x=\"adobe:ns:meta/\" x:xmptk=\"missive\">\
             <rdf:RDF xmlns:rdf=\"http://www.w3.org/1999/02/22-rdf-syntax-ns#\">\
             <rdf:Description rdf:about=\"\" xmlns:dc=\"http://purl.org/dc/elements/1.1/\" \
             xmlns:xmp=\"http://ns.adobe.com/xap/1.0/\" xmlns:xmpMM=\"http://ns.adobe.com/xap/1.0/mm/\" \
             xmlns:xmpTPg=\"http://ns.adobe.com/xap/1.0/t/pg/\" xmlns:pdf=\"http://ns.adobe.com/pdf/1.3/\" \
             xmlns:pdfaid=\"http://www.aiim.org/pdfa/ns/id/\" xmlns:pdfuaid=\"http://www.aiim.org/pdfua/ns/id/\" \
             xmlns:pdfaExtension=\"http://www.aiim.org/pdfa/ns/extension/\" \
             xmlns:pdfaSchema=\"http://www.aiim.org/pdfa/ns/schema#\" \
             xmlns:pdfaProperty=\"http://www.aiim.org/pdfa/ns/property#\">\
             <dc:title><rdf:Alt><rdf:li xml:lang=\"x-default\">{title}</rdf:li></rdf:Alt></dc:title>\
             {creator}<xmp:CreatorTool>missive</xmp:CreatorTool>\
             <dc:language><rdf:Bag><rdf:li>{lang}</rdf:li></rdf:Bag></dc:language>\
             <xmp:ModifyDate>{when}</xmp:ModifyDate><xmp:CreateDate>{when}</xmp:CreateDate>\
             {EXTENSION_SCHEMAS}\
             <pdfaid:part>2</pdfaid:part><pdfaid:conformance>B</pdfaid:conformance>\
             <pdfuaid:part>1</pdfuaid:part><xmpTPg:NPages>{pages}</xmpTPg:NPages>\
             <dc:format>application/pdf</dc:format>\
             <xmpMM:InstanceID>{instance}</xmpMM:InstanceID><xmpMM:DocumentID>{document}</xmpMM:DocumentID>\
             <xmpMM:RenditionClass>proof</xmpMM:RenditionClass><pdf:PDFVersion>1.7</pdf:PDFVersion>\
             </rdf:Description></rdf:RDF></x:xmpmeta><?xpacket end=\"r\"?>",
            title = xml(self.title),
            lang = xml(self.lang),
            pages = self.pages,
            instance = xml(self.instance_id),
            document = xml(self.document_id),
        )
    }
}

/// `text` escaped for XML character data and attribute values (Tera's HTML escaping:
/// its character references are XML's too).
fn xml(text: &str) -> String {
    tera::escape_html(text)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn xref_entries_are_twenty_bytes_as_formatted() {
        for offset in [0u64, 7, 1_234_567_890, 9_999_999_999] {
            let mut table = Vec::new();
            xref_entry(&mut table, offset);
            assert_eq!(table, format!("{offset:010} 00000 n \n").into_bytes());
            assert_eq!(table.len(), 20);
        }
    }

    #[test]
    fn text_strings_are_literal_ascii_or_utf16() {
        assert_eq!(
            text_string("Batch 1"),
            Object::String(b"Batch 1".to_vec(), StringFormat::Literal)
        );
        let Object::String(bytes, StringFormat::Hexadecimal) = text_string("Lote – 1") else {
            panic!("not hex");
        };
        assert_eq!(&bytes[..4], &[0xFE, 0xFF, 0, b'L']);
        assert_eq!(bytes.len(), 2 + 2 * 8);
    }

    #[test]
    fn xmp_escapes_and_states_both_standards() {
        let xmp = Xmp {
            title: "A <b> & \"c\"",
            author: "",
            lang: "en",
            date: "2026-12-01",
            pages: 4,
            document_id: "d",
            instance_id: "i",
        }
        .packet();
        assert!(xmp.contains("A &lt;b&gt; &amp; &quot;c&quot;"), "{xmp}");
        assert!(!xmp.contains("dc:creator"));
        for needle in [
            "<pdfaid:part>2</pdfaid:part>",
            "<pdfaid:conformance>B</pdfaid:conformance>",
            "<pdfuaid:part>1</pdfuaid:part>",
            "<xmp:CreateDate>2026-12-01T00:00:00+00:00</xmp:CreateDate>",
            "<xmpTPg:NPages>4</xmpTPg:NPages>",
        ] {
            assert!(xmp.contains(needle), "{needle}");
        }
    }

    #[test]
    fn big_trees_are_split_into_leaves_with_limits() {
        let mut buf = Vec::new();
        let mut out = PdfOut::new(&mut buf).expect("header");
        let entries = (0..300)
            .map(|i| (Object::Integer(i), Object::Null))
            .collect();
        let root = write_tree(&mut out, "Nums", entries).expect("tree");
        assert_eq!(root, 1);
        let catalog = out.reserve();
        out.write(catalog, &mut Object::Null).expect("write");
        let done = out.finish(catalog, catalog, [0; 16]).expect("finish");
        assert_eq!(done.bytes, buf.len() as u64);
        let text = String::from_utf8_lossy(&buf);
        assert!(text.contains("/Limits[0 127]"), "{text}");
        assert!(text.contains("/Limits[256 299]"), "{text}");
        assert!(
            text.contains("1 0 obj\n<</Kids[2 0 R 3 0 R 4 0 R]>>"),
            "{text}"
        );
        assert!(text.ends_with("%%EOF\n"));
    }

    #[test]
    fn an_object_reserved_and_never_written_fails_the_file() {
        let mut out = PdfOut::new(Vec::new()).expect("header");
        let a = out.reserve();
        let _b = out.reserve();
        out.write(a, &mut Object::Null).expect("write");
        assert!(out.write(a, &mut Object::Null).is_err(), "twice");
        assert!(out.finish(a, a, [0; 16]).is_err());
    }
}
