//! Reading one letter for the batch: its catalog and structure tree root are checked for
//! entries a batch cannot merge (an error, never silently dropped), its pages (with what
//! they inherit), top structure elements, parent tree, id tree, role and class maps,
//! outline and output intent are found, and everything they reach is copied.
//!
//! The document info and XMP metadata are not reachable from a page and stay behind: the
//! batch has its own.

use std::io::Write;

use lopdf::{Dictionary, Object, ObjectId};

use super::AssembleError;
use super::copy::{Copier, bad};
use super::output::PdfOut;

/// Catalog entries a letter may have; each is merged or replaced by the batch's own.
const CATALOG_KEYS: &[&[u8]] = &[
    b"Type",
    b"Pages",
    b"Metadata",
    b"Outlines",
    b"OutputIntents",
    b"StructTreeRoot",
    b"MarkInfo",
    b"Lang",
    b"ViewerPreferences",
];

/// Structure tree root entries a letter may have; each is merged.
const STRUCT_ROOT_KEYS: &[&[u8]] = &[
    b"Type",
    b"K",
    b"ParentTree",
    b"ParentTreeNextKey",
    b"IDTree",
    b"RoleMap",
    b"ClassMap",
];

/// Page attributes a page may inherit from its page tree nodes.
const INHERITED: &[&[u8]] = &[b"Resources", b"MediaBox", b"CropBox", b"Rotate"];

/// Page tree nesting accepted (Typst writes one level).
const MAX_DEPTH: usize = 32;

/// The batch's objects that stand in for a letter's own.
#[derive(Debug, Clone, Copy)]
pub(super) struct Targets {
    /// The batch's page tree root: every page's `/Parent`.
    pub pages: u32,
    /// The parent of the letter's top structure elements.
    pub struct_parent: u32,
    /// The letter's item in the batch outline: the parent of its own outline items.
    pub outline: u32,
}

/// A letter's outline, copied: its first and last top-level items and their count.
#[derive(Debug, Clone, Copy)]
pub(super) struct Outline {
    pub first: u32,
    pub last: u32,
    /// Items visible when the letter's item is opened.
    pub count: i64,
}

/// What one letter brought into the batch.
#[derive(Debug)]
pub(super) struct Copied {
    /// Its pages, in order.
    pub pages: Vec<u32>,
    /// Its top structure elements (Typst: one `Document`).
    pub tops: Vec<u32>,
    /// Its parent tree entries, keys already moved past earlier letters'.
    pub parent_tree: Vec<(i64, Object)>,
    /// The first parent tree key free after it.
    pub next_key: i64,
    /// Its structure element ids (prefixed) and elements.
    pub ids: Vec<(Vec<u8>, Object)>,
    /// Its role map.
    pub role_map: Vec<(Vec<u8>, Object)>,
    /// Its class map (class names prefixed like ids).
    pub class_map: Vec<(Vec<u8>, Object)>,
    /// Its outline, if it has one.
    pub outline: Option<Outline>,
    /// Its document title (document info `/Title`), as written.
    pub title: Option<Object>,
    /// Its document language (`/Lang`), as text.
    pub lang: Option<String>,
    /// Its output intents, copied (asked for the first letter only).
    pub output_intents: Option<Object>,
    /// SHA-256 of its output intent's ICC profile data.
    pub profile: Option<[u8; 32]>,
}

/// One page as found in the page tree, with what it inherits.
struct PageRef {
    id: ObjectId,
    inherited: Dictionary,
}

impl Copier<'_> {
    /// The letter's catalog, checked for entries that cannot be merged.
    fn catalog(&self) -> Result<Dictionary, AssembleError> {
        let catalog = self
            .doc
            .catalog()
            .map_err(|_| bad(self.path, "it has no document catalog"))?;
        if let Some((key, _)) = catalog
            .iter()
            .find(|(k, _)| !CATALOG_KEYS.contains(&&k[..]))
        {
            return Err(bad(
                self.path,
                format!(
                    "its catalog has /{}, which a batch cannot merge",
                    String::from_utf8_lossy(key)
                ),
            ));
        }
        Ok(catalog.clone())
    }

    /// The letter's pages in order, each with what it inherits; every page tree node is
    /// redirected to the batch's page tree root.
    fn collect_pages(
        &mut self,
        root: &Object,
        targets: Targets,
    ) -> Result<Vec<PageRef>, AssembleError> {
        let mut pages = Vec::new();
        let mut stack = vec![(root.clone(), Dictionary::new(), 0usize)];
        while let Some((node, inherited, depth)) = stack.pop() {
            let Object::Reference(id) = node else {
                return Err(bad(self.path, "a page tree node is not an indirect object"));
            };
            if depth > MAX_DEPTH || self.number_of(id).is_some() {
                return Err(bad(self.path, "its page tree loops or is too deep"));
            }
            let dict = self.dict(&node, "page tree node")?.clone();
            if dict.has_type(b"Page") {
                if pages.iter().any(|p: &PageRef| p.id == id) {
                    return Err(bad(self.path, "a page appears twice in its page tree"));
                }
                pages.push(PageRef { id, inherited });
                continue;
            }
            self.set_number(id, targets.pages)?;
            let mut passed = inherited;
            for key in INHERITED {
                if let Ok(value) = dict.get(key) {
                    passed.set(key.to_vec(), value.clone());
                }
            }
            let kids = dict
                .get(b"Kids")
                .and_then(Object::as_array)
                .map_err(|_| bad(self.path, "a page tree node has no /Kids"))?;
            for kid in kids.iter().rev() {
                stack.push((kid.clone(), passed.clone(), depth + 1));
            }
        }
        Ok(pages)
    }

    /// Copies the letter into `out`: pages first, then its structure, outline and (when
    /// `with_intents`) output intents. `key_offset` moves its parent tree keys past the
    /// letters before it; `prefix` keeps its structure ids apart from theirs.
    pub(super) fn copy<W: Write>(
        mut self,
        out: &mut PdfOut<W>,
        targets: Targets,
        key_offset: i64,
        prefix: &[u8],
        with_intents: bool,
    ) -> Result<Copied, AssembleError> {
        let path = self.path;
        let catalog = self.catalog()?;
        self.key_offset = key_offset;
        self.prefix = prefix.to_vec();
        let lang = catalog.get(b"Lang").ok().and_then(|l| self.resolve(l).ok());
        let lang = lang.and_then(|l| l.as_str().ok()).map(<[u8]>::to_vec);
        self.lang = lang
            .as_ref()
            .map(|l| Object::String(l.clone(), lopdf::StringFormat::Literal));

        let pages_root = catalog
            .get(b"Pages")
            .map_err(|_| bad(path, "it has no page tree"))?;
        let pages = self.collect_pages(pages_root, targets)?;
        if pages.is_empty() {
            return Err(bad(path, "it has no pages"));
        }
        for page in &pages {
            let page_ref = Object::Reference(page.id);
            let dict = self.dict(&page_ref, "page")?;
            if let Ok(Object::Reference(contents)) = dict.get(b"Contents") {
                self.unshared.insert(*contents);
            }
            self.pages.insert(page.id, page.inherited.clone());
        }

        // The structure tree (PDF/UA requires one).
        let root_ref = catalog
            .get(b"StructTreeRoot")
            .map_err(|_| bad(path, "it has no structure tree (not tagged)"))?;
        if let Object::Reference(id) = root_ref {
            self.set_number(*id, targets.struct_parent)?;
        }
        let root = self.dict(root_ref, "structure tree root")?.clone();
        if let Some((key, _)) = root
            .iter()
            .find(|(k, _)| !STRUCT_ROOT_KEYS.contains(&&k[..]))
        {
            return Err(bad(
                path,
                format!(
                    "its structure tree root has /{}, which a batch cannot merge",
                    String::from_utf8_lossy(key)
                ),
            ));
        }
        let tops: Vec<ObjectId> = match root.get(b"K") {
            Ok(Object::Reference(id)) => vec![*id],
            Ok(Object::Array(kids)) => kids
                .iter()
                .map(|k| k.as_reference())
                .collect::<Result<_, _>>()
                .map_err(|_| bad(path, "a top structure element is not an indirect object"))?,
            _ => return Err(bad(path, "its structure tree root has no elements")),
        };
        self.tops = tops.iter().copied().collect();
        let parent_tree = match root.get(b"ParentTree") {
            Ok(tree) => self.number_tree(tree)?,
            Err(_) => Vec::new(),
        };
        let ids = match root.get(b"IDTree") {
            Ok(tree) => self.name_tree(tree)?,
            Err(_) => Vec::new(),
        };
        let role_map = match root.get(b"RoleMap") {
            Ok(map) => entries(self.dict(map, "role map")?),
            Err(_) => Vec::new(),
        };
        let class_map = match root.get(b"ClassMap") {
            Ok(map) => entries(self.dict(map, "class map")?),
            Err(_) => Vec::new(),
        };
        let next_key = match root.get(b"ParentTreeNextKey").and_then(Object::as_i64) {
            Ok(next) => next,
            Err(_) => parent_tree.iter().map(|(k, _)| k + 1).max().unwrap_or(0),
        };

        // The outline: its items hang from the letter's item in the batch outline.
        let mut outline_root = None;
        if let Ok(outlines) = catalog.get(b"Outlines") {
            if let Object::Reference(id) = outlines {
                self.set_number(*id, targets.outline)?;
            }
            let dict = self.dict(outlines, "outline")?.clone();
            if let (Ok(first), Ok(last)) = (dict.get(b"First"), dict.get(b"Last")) {
                let count = dict.get(b"Count").and_then(Object::as_i64).unwrap_or(0);
                outline_root = Some((first.clone(), last.clone(), count));
            }
        }
        let intents = match catalog.get(b"OutputIntents") {
            Ok(intents) => Some(self.resolve(intents)?.clone()),
            Err(_) => None,
        };
        let profile = match &intents {
            Some(intents) => self.profile_hash(intents)?,
            None => None,
        };

        // Find and number everything reachable, pages first.
        for page in &pages {
            self.visit(out, &Object::Reference(page.id))?;
        }
        for top in &tops {
            self.visit(out, &Object::Reference(*top))?;
        }
        let values = parent_tree.iter().map(|(_, v)| v);
        for value in values.chain(ids.iter().chain(&class_map).map(|(_, v)| v)) {
            self.visit(out, value)?;
        }
        if let Some((first, last, _)) = &outline_root {
            self.visit(out, first)?;
            self.visit(out, last)?;
        }
        if let (true, Some(intents)) = (with_intents, &intents) {
            self.visit(out, intents)?;
        }
        self.write_all(out)?;

        let number = |object: &Object| -> Result<u32, AssembleError> {
            self.rewritten(object.clone()).and_then(|o| {
                o.as_reference()
                    .map(|(n, _)| n)
                    .map_err(|_| bad(path, "an outline item is not an indirect object"))
            })
        };
        let outline = match &outline_root {
            Some((first, last, count)) => Some(Outline {
                first: number(first)?,
                last: number(last)?,
                count: *count,
            }),
            None => None,
        };
        let renumber = |list: Vec<(Vec<u8>, Object)>, prefixed: bool| {
            list.into_iter()
                .map(|(k, v)| {
                    let k = if prefixed { [prefix, &k].concat() } else { k };
                    self.rewritten(v).map(|v| (k, v))
                })
                .collect::<Result<Vec<_>, _>>()
        };
        Ok(Copied {
            pages: pages
                .iter()
                .map(|p| self.number(p.id))
                .collect::<Result<_, _>>()?,
            tops: tops
                .iter()
                .map(|t| self.number(*t))
                .collect::<Result<_, _>>()?,
            parent_tree: parent_tree
                .into_iter()
                .map(|(k, v)| self.rewritten(v).map(|v| (k + key_offset, v)))
                .collect::<Result<_, _>>()?,
            next_key: next_key + key_offset,
            ids: renumber(ids, true)?,
            role_map: renumber(role_map, false)?,
            class_map: renumber(class_map, true)?,
            outline,
            title: self.title(),
            lang: lang.map(|l| String::from_utf8_lossy(&l).into_owned()),
            output_intents: match (with_intents, intents) {
                (true, Some(intents)) => Some(self.rewritten(intents)?),
                _ => None,
            },
            profile,
        })
    }

    /// Copies the resources and contents of the document's only page (the blank back
    /// page) and returns that page's dictionary to repeat for each padding page: no
    /// `/Parent` (the caller sets it), no `/StructParents` and no annotations, since the
    /// page holds nothing but an artifact.
    pub(super) fn copy_bare_page<W: Write>(
        mut self,
        out: &mut PdfOut<W>,
        pages_root: u32,
    ) -> Result<Dictionary, AssembleError> {
        let catalog = self.catalog()?;
        let root = catalog
            .get(b"Pages")
            .map_err(|_| bad(self.path, "it has no page tree"))?;
        // Only the page tree is read here.
        let targets = Targets {
            pages: pages_root,
            struct_parent: pages_root,
            outline: pages_root,
        };
        let pages = self.collect_pages(root, targets)?;
        let [page] = pages.as_slice() else {
            return Err(bad(
                self.path,
                format!("it has {} pages, not 1", pages.len()),
            ));
        };
        let mut dict = self.dict(&Object::Reference(page.id), "page")?.clone();
        for (key, value) in page.inherited.iter() {
            if !dict.has(key) {
                dict.set(key.clone(), value.clone());
            }
        }
        for key in [&b"Parent"[..], b"StructParents", b"Annots"] {
            dict.remove(key);
        }
        // Without its structure, the page may hold nothing tagged as content.
        let contents = self.stream_at(&dict, b"Contents", "page contents (as one stream)")?;
        let data = contents
            .decompressed_content()
            .map_err(|e| bad(self.path, format!("its contents do not decompress: {e}")))?;
        if data.windows(5).any(|w| w == b"/MCID") {
            return Err(bad(
                self.path,
                "its text is tagged as content, not as an artifact",
            ));
        }
        self.visit(out, &Object::Dictionary(dict.clone()))?;
        self.write_all(out)?;
        match self.rewritten(Object::Dictionary(dict))? {
            Object::Dictionary(dict) => Ok(dict),
            _ => Err(bad(self.path, "its page is not a dictionary")),
        }
    }

    /// The document info `/Title`.
    fn title(&self) -> Option<Object> {
        let info = self.doc.trailer.get(b"Info").ok()?;
        let info = self.resolve(info).ok()?.as_dict().ok()?;
        let title = info.get(b"Title").ok()?;
        self.resolve(title).ok().cloned()
    }

    /// SHA-256 of the ICC profile data of the first output intent.
    fn profile_hash(&self, intents: &Object) -> Result<Option<[u8; 32]>, AssembleError> {
        use sha2::{Digest, Sha256};
        let Ok(first) = intents.as_array().map(|a| a.first()) else {
            return Err(bad(self.path, "its /OutputIntents is not an array"));
        };
        let Some(first) = first else { return Ok(None) };
        let intent = self.dict(first, "output intent")?;
        let stream = self.stream_at(intent, b"DestOutputProfile", "output intent ICC profile")?;
        Ok(Some(Sha256::digest(&stream.content).into()))
    }

    /// The entries of a number tree, flattened, sorted by key.
    fn number_tree(&self, tree: &Object) -> Result<Vec<(i64, Object)>, AssembleError> {
        let mut found = Vec::new();
        self.tree_entries(tree, b"Nums", 0, &mut found)?;
        let mut entries = found
            .into_iter()
            .map(|(k, v)| k.as_i64().map(|k| (k, v)))
            .collect::<Result<Vec<_>, _>>()
            .map_err(|_| bad(self.path, "a parent tree key is not an integer"))?;
        entries.sort_by_key(|(k, _)| *k);
        Ok(entries)
    }

    /// The entries of a name tree, flattened.
    fn name_tree(&self, tree: &Object) -> Result<Vec<(Vec<u8>, Object)>, AssembleError> {
        let mut found = Vec::new();
        self.tree_entries(tree, b"Names", 0, &mut found)?;
        found
            .into_iter()
            .map(|(k, v)| k.as_str().map(|k| (k.to_vec(), v)))
            .collect::<Result<Vec<_>, _>>()
            .map_err(|_| bad(self.path, "an id tree key is not a string"))
    }

    fn tree_entries(
        &self,
        node: &Object,
        kind: &[u8],
        depth: usize,
        found: &mut Vec<(Object, Object)>,
    ) -> Result<(), AssembleError> {
        if depth > MAX_DEPTH {
            return Err(bad(self.path, "a number or name tree is too deep"));
        }
        let dict = self.dict(node, "number or name tree")?;
        if let Ok(pairs) = dict.get(kind) {
            let pairs = self.resolve(pairs)?.as_array().map_err(|_| {
                bad(
                    self.path,
                    "a number or name tree's entries are not an array",
                )
            })?;
            for pair in pairs.chunks(2) {
                if let [key, value] = pair {
                    found.push((key.clone(), value.clone()));
                }
            }
        }
        if let Ok(kids) = dict.get(b"Kids") {
            let kids = self
                .resolve(kids)?
                .as_array()
                .map_err(|_| bad(self.path, "a number or name tree's kids are not an array"))?;
            for kid in kids {
                self.tree_entries(kid, kind, depth + 1, found)?;
            }
        }
        Ok(())
    }
}

/// The entries of a dictionary, in order.
fn entries(dict: &Dictionary) -> Vec<(Vec<u8>, Object)> {
    dict.iter().map(|(k, v)| (k.clone(), v.clone())).collect()
}
