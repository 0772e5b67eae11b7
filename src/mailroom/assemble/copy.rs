//! Copying objects from one PDF into the batch: everything reachable from given roots is
//! numbered anew (or shared, for a stream the batch already holds), rewritten and written
//! out, then dropped from the source document.
//!
//! Objects the batch replaces (page tree nodes, the structure tree root, the outline root)
//! are never copied: they are numbered up front with the batch's own, so a reference to
//! them lands there. A reference to anything else that is not copied (the catalog, the
//! document info, a missing object) is an error naming the letter.

use std::collections::{HashMap, HashSet};
use std::io::Write;
use std::path::Path;

use lopdf::{Dictionary, Document, LoadOptions, Object, ObjectId};

use super::AssembleError;
use super::output::PdfOut;
use super::parse;

/// Parses a letter's bytes strictly: a file lopdf has to repair is refused. Letters as
/// Typst writes them are read by the quicker [`parse::read`], to the same document.
pub(super) fn load(path: &Path, bytes: &[u8]) -> Result<Document, AssembleError> {
    if let Some(doc) = parse::read(bytes) {
        return Ok(doc);
    }
    let options = LoadOptions {
        strict: true,
        ..LoadOptions::default()
    };
    let doc =
        Document::load_mem_with_options(bytes, options).map_err(|source| AssembleError::Parse {
            path: path.to_owned(),
            source,
        })?;
    if doc.xref_recovery.is_some() {
        return Err(bad(path, "its cross-reference table is damaged"));
    }
    if doc.trailer.has(b"Encrypt") {
        return Err(bad(path, "it is encrypted"));
    }
    Ok(doc)
}

/// An error about the letter at `path`.
pub(super) fn bad(path: &Path, what: impl Into<String>) -> AssembleError {
    AssembleError::Letter {
        path: path.to_owned(),
        what: what.into(),
    }
}

/// The largest object number a PDF may have (ISO 32000-1, annex C).
const MAX_OBJECT: usize = 8_388_607;

/// A letter being copied.
pub(super) struct Copier<'p> {
    pub(super) path: &'p Path,
    pub(super) doc: Document,
    /// By letter object number: its generation and its number in the batch (0: none
    /// yet). Objects the batch replaces (page tree nodes, the structure tree root, the
    /// outline root) are numbered up front with the batch's own; copied (or shared) ones
    /// as they are found.
    numbers: Vec<(u16, u32)>,
    /// Objects to write, in the order found.
    order: Vec<(ObjectId, u32)>,
    /// Streams never worth hashing for sharing (page contents).
    pub(super) unshared: HashSet<ObjectId>,
    /// Pages and what each inherits.
    pub(super) pages: HashMap<ObjectId, Dictionary>,
    /// Top structure elements.
    pub(super) tops: HashSet<ObjectId>,
    /// Added to every `/StructParent(s)`.
    pub(super) key_offset: i64,
    /// Put before every structure element id and class name.
    pub(super) prefix: Vec<u8>,
    /// Given to top structure elements without a `/Lang`.
    pub(super) lang: Option<Object>,
}

impl<'p> Copier<'p> {
    /// A copier for `doc` (the file at `path`).
    pub(super) fn new(path: &'p Path, doc: Document) -> Self {
        Self {
            path,
            doc,
            numbers: Vec::new(),
            order: Vec::new(),
            unshared: HashSet::new(),
            pages: HashMap::new(),
            tops: HashSet::new(),
            key_offset: 0,
            prefix: Vec::new(),
            lang: None,
        }
    }

    /// The batch number of letter object `id`, if it has one.
    pub(super) fn number_of(&self, id: ObjectId) -> Option<u32> {
        match self.numbers.get(id.0 as usize) {
            Some(&(generation, number)) if number != 0 && generation == id.1 => Some(number),
            _ => None,
        }
    }

    /// The batch number of letter object `id`, which must have one by now.
    pub(super) fn number(&self, id: ObjectId) -> Result<u32, AssembleError> {
        self.number_of(id).ok_or_else(|| {
            bad(
                self.path,
                format!("object {} {} was not copied", id.0, id.1),
            )
        })
    }

    /// Gives letter object `id` batch number `number`.
    pub(super) fn set_number(&mut self, id: ObjectId, number: u32) -> Result<(), AssembleError> {
        let index = id.0 as usize;
        if index > MAX_OBJECT {
            return Err(bad(
                self.path,
                format!("object number {} is too large", id.0),
            ));
        }
        if self.numbers.len() <= index {
            self.numbers.resize(index + 1, (0, 0));
        }
        self.numbers[index] = (id.1, number);
        Ok(())
    }

    /// `object`, or the object it refers to.
    pub(super) fn resolve<'a>(&'a self, object: &'a Object) -> Result<&'a Object, AssembleError> {
        match object {
            Object::Reference(id) => self.doc.get_object(*id).map_err(|_| {
                bad(
                    self.path,
                    format!("object {} {} is referenced but missing", id.0, id.1),
                )
            }),
            other => Ok(other),
        }
    }

    /// The stream `dict[key]` is or refers to; `what` names it in the error.
    pub(super) fn stream_at<'a>(
        &'a self,
        dict: &'a Dictionary,
        key: &[u8],
        what: &str,
    ) -> Result<&'a lopdf::Stream, AssembleError> {
        let object = dict
            .get(key)
            .map_err(|_| bad(self.path, format!("it has no {what}")))?;
        self.resolve(object)?
            .as_stream()
            .map_err(|_| bad(self.path, format!("its {what} is not a stream")))
    }

    pub(super) fn dict<'a>(
        &'a self,
        object: &'a Object,
        what: &str,
    ) -> Result<&'a Dictionary, AssembleError> {
        self.resolve(object)?
            .as_dict()
            .map_err(|_| bad(self.path, format!("its {what} is not a dictionary")))
    }

    /// Numbers every object reachable from `start` that is neither numbered nor replaced.
    /// A stream without references that the batch already holds is shared, not copied.
    pub(super) fn visit<W: Write>(
        &mut self,
        out: &mut PdfOut<W>,
        start: &Object,
    ) -> Result<(), AssembleError> {
        let mut stack = Vec::new();
        push_refs(start, &mut stack);
        while let Some(id) = stack.pop() {
            if self.number_of(id).is_some() {
                continue;
            }
            let object = self.doc.objects.get(&id).ok_or_else(|| {
                bad(
                    self.path,
                    format!("object {} {} is referenced but missing", id.0, id.1),
                )
            })?;
            let before = stack.len();
            push_refs(object, &mut stack);
            stack[before..].reverse();
            let leaf = stack.len() == before;
            let shared = match object {
                Object::Stream(stream) if leaf && !self.unshared.contains(&id) => {
                    match out.find_shared(stream) {
                        Ok(existing) => {
                            self.set_number(id, existing)?;
                            continue;
                        }
                        Err(key) => Some(key),
                    }
                }
                _ => None,
            };
            let number = out.reserve();
            if let Some(key) = shared {
                out.remember(key, number);
            }
            self.set_number(id, number)?;
            self.order.push((id, number));
        }
        Ok(())
    }

    /// Writes every numbered object, fixed up and renumbered, taking it out of the letter.
    pub(super) fn write_all<W: Write>(&mut self, out: &mut PdfOut<W>) -> Result<(), AssembleError> {
        for (id, number) in std::mem::take(&mut self.order) {
            let Some(mut object) = self.doc.objects.remove(&id) else {
                return Err(bad(self.path, format!("object {} {} vanished", id.0, id.1)));
            };
            self.fix(id, &mut object);
            self.renumber(&mut object)?;
            out.write(number, &mut object)
                .map_err(AssembleError::Write)?;
        }
        Ok(())
    }

    /// What changes in an object for it to sit in the batch: parent tree keys move,
    /// structure ids and classes get the letter's prefix, pages get what they inherited,
    /// top structure elements their letter's language.
    fn fix(&self, id: ObjectId, object: &mut Object) {
        let dict = match object {
            Object::Dictionary(dict) => dict,
            Object::Stream(stream) => &mut stream.dict,
            _ => return,
        };
        for key in [&b"StructParent"[..], b"StructParents"] {
            if let Ok(Object::Integer(n)) = dict.get_mut(key) {
                *n += self.key_offset;
            }
        }
        if let Some(inherited) = self.pages.get(&id) {
            for (key, value) in inherited.iter() {
                if !dict.has(key) {
                    dict.set(key.clone(), value.clone());
                }
            }
        }
        if dict.has_type(b"StructElem") || (dict.has(b"S") && dict.has(b"P")) {
            if let Ok(Object::String(element_id, _)) = dict.get_mut(b"ID") {
                prepend(element_id, &self.prefix);
            }
            match dict.get_mut(b"C") {
                Ok(Object::Name(class)) => prepend(class, &self.prefix),
                Ok(Object::Array(classes)) => {
                    for class in classes {
                        if let Object::Name(class) = class {
                            prepend(class, &self.prefix);
                        }
                    }
                }
                _ => {}
            }
            if let Ok(attributes) = dict.get_mut(b"A") {
                prefix_headers(attributes, &self.prefix);
            }
            if let (true, Some(lang)) = (self.tops.contains(&id) && !dict.has(b"Lang"), &self.lang)
            {
                dict.set("Lang", lang.clone());
            }
        } else if dict.has(b"O") {
            // An attribute object of its own.
            prefix_headers(object, &self.prefix);
        }
    }

    /// `object` with every reference renumbered.
    pub(super) fn rewritten(&self, mut object: Object) -> Result<Object, AssembleError> {
        self.renumber(&mut object)?;
        Ok(object)
    }

    /// Renumbers every reference inside `object`, in place; drops a stream's `/Length`
    /// (the writer sets it).
    fn renumber(&self, object: &mut Object) -> Result<(), AssembleError> {
        match object {
            Object::Reference(id) => {
                let number = self.number_of(*id).ok_or_else(|| {
                    bad(
                        self.path,
                        format!("object {} {} cannot be carried into a batch", id.0, id.1),
                    )
                })?;
                *id = (number, 0);
            }
            Object::Array(items) => {
                for item in items {
                    self.renumber(item)?;
                }
            }
            Object::Dictionary(dict) => {
                for (_, value) in dict.iter_mut() {
                    self.renumber(value)?;
                }
            }
            Object::Stream(stream) => {
                stream.dict.remove(b"Length");
                for (_, value) in stream.dict.iter_mut() {
                    self.renumber(value)?;
                }
            }
            _ => {}
        }
        Ok(())
    }
}

/// Pushes every reference inside `object` (a stream's `/Length` aside) in order.
fn push_refs(object: &Object, stack: &mut Vec<ObjectId>) {
    match object {
        Object::Reference(id) => stack.push(*id),
        Object::Array(items) => items.iter().for_each(|i| push_refs(i, stack)),
        Object::Dictionary(dict) => dict.iter().for_each(|(_, v)| push_refs(v, stack)),
        Object::Stream(stream) => stream
            .dict
            .iter()
            .filter(|(k, _)| k.as_slice() != b"Length")
            .for_each(|(_, v)| push_refs(v, stack)),
        _ => {}
    }
}

/// Prefixes the structure element ids a table attribute's `/Headers` names.
fn prefix_headers(attributes: &mut Object, prefix: &[u8]) {
    match attributes {
        Object::Array(items) => items.iter_mut().for_each(|i| prefix_headers(i, prefix)),
        Object::Dictionary(dict) => {
            if let Ok(Object::Array(headers)) = dict.get_mut(b"Headers") {
                for header in headers {
                    if let Object::String(id, _) = header {
                        prepend(id, prefix);
                    }
                }
            }
        }
        _ => {}
    }
}

/// Puts `prefix` in front of `bytes`.
fn prepend(bytes: &mut Vec<u8>, prefix: &[u8]) {
    bytes.splice(0..0, prefix.iter().copied());
}
