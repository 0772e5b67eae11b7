//! Copying objects from one PDF into the batch: everything reachable from given roots is
//! numbered anew (or shared, for a stream the batch already holds), rewritten and written
//! out, then dropped from the source document.
//!
//! Objects the batch replaces (page tree nodes, the structure tree root, the outline root)
//! are never copied: [`Copier::special`] sends a reference to them to the batch's own. A
//! reference to anything else that is not copied (the catalog, the document info, a
//! missing object) is an error naming the letter.

use std::collections::{HashMap, HashSet};
use std::io::Write;
use std::path::Path;

use lopdf::{Dictionary, Document, LoadOptions, Object, ObjectId};

use super::AssembleError;
use super::output::PdfOut;

/// Parses a letter's bytes strictly: a file lopdf has to repair is refused.
pub(super) fn load(path: &Path, bytes: &[u8]) -> Result<Document, AssembleError> {
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

/// A letter being copied.
pub(super) struct Copier<'p> {
    pub(super) path: &'p Path,
    pub(super) doc: Document,
    /// Letter objects the batch replaces, and by what.
    pub(super) special: HashMap<ObjectId, u32>,
    /// Letter objects copied (or shared), and their number in the batch.
    pub(super) map: HashMap<ObjectId, u32>,
    /// Objects to write, in the order found.
    order: Vec<ObjectId>,
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
            special: HashMap::new(),
            map: HashMap::new(),
            order: Vec::new(),
            unshared: HashSet::new(),
            pages: HashMap::new(),
            tops: HashSet::new(),
            key_offset: 0,
            prefix: Vec::new(),
            lang: None,
        }
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
            if self.special.contains_key(&id) || self.map.contains_key(&id) {
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
                            self.map.insert(id, existing);
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
            self.map.insert(id, number);
            self.order.push(id);
        }
        Ok(())
    }

    /// Writes every numbered object, fixed up and renumbered, taking it out of the letter.
    pub(super) fn write_all<W: Write>(&mut self, out: &mut PdfOut<W>) -> Result<(), AssembleError> {
        for id in std::mem::take(&mut self.order) {
            let Some(mut object) = self.doc.objects.remove(&id) else {
                return Err(bad(self.path, format!("object {} {} vanished", id.0, id.1)));
            };
            self.fix(id, &mut object);
            let object = self.rewritten(object)?;
            out.write(self.map[&id], &object)
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
    pub(super) fn rewritten(&self, object: Object) -> Result<Object, AssembleError> {
        Ok(match object {
            Object::Reference(id) => {
                let number = self
                    .special
                    .get(&id)
                    .or_else(|| self.map.get(&id))
                    .ok_or_else(|| {
                        bad(
                            self.path,
                            format!("object {} {} cannot be carried into a batch", id.0, id.1),
                        )
                    })?;
                Object::Reference((*number, 0))
            }
            Object::Array(items) => Object::Array(
                items
                    .into_iter()
                    .map(|i| self.rewritten(i))
                    .collect::<Result<_, _>>()?,
            ),
            Object::Dictionary(dict) => Object::Dictionary(self.rewritten_dict(dict)?),
            Object::Stream(mut stream) => {
                stream.dict.remove(b"Length");
                let dict = std::mem::take(&mut stream.dict);
                stream.dict = self.rewritten_dict(dict)?;
                Object::Stream(stream)
            }
            other => other,
        })
    }

    fn rewritten_dict(&self, dict: Dictionary) -> Result<Dictionary, AssembleError> {
        let mut out = Dictionary::new();
        for (key, value) in dict.into_iter() {
            out.set(key, self.rewritten(value)?);
        }
        Ok(out)
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
