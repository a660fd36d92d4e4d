//! The flattened devicetree format itself (Devicetree Specification v0.4, chapter 5): the
//! header, the memory reservation block and the structure block's token stream.
//!
//! [`Blob::new`] checks the whole blob once: header offsets and sizes inside the blob,
//! every token known, every name and property inside the structure block, every property
//! name inside the strings block, nodes balanced, one root, then `FDT_END`. `FDT_NOP` tokens
//! may stand anywhere a token may. Names are not held to the specification's character set
//! or 31-character limit: Linux's own trees break it (`arm,coresight-loses-context-with-cpu`),
//! and nothing here depends on it. Every later read is still bounds-checked and ends an
//! iteration rather than panicking.

use super::DtbError;

const FDT_BEGIN_NODE: u32 = 0x1;
const FDT_END_NODE: u32 = 0x2;
const FDT_PROP: u32 = 0x3;
const FDT_NOP: u32 = 0x4;
const FDT_END: u32 = 0x9;

/// The big-endian word at `at` in `bytes`.
fn word(bytes: &[u8], at: usize) -> Option<u32> {
    let end = at.checked_add(4)?;
    Some(u32::from_be_bytes(bytes.get(at..end)?.try_into().ok()?))
}

/// The NUL-terminated string at `at` in `bytes`, without its NUL, and the offset just past
/// the NUL.
fn c_string(bytes: &[u8], at: usize) -> Option<(&[u8], usize)> {
    let rest = bytes.get(at..)?;
    let length = rest.iter().position(|&b| b == 0)?;
    Some((rest.get(..length)?, at + length + 1))
}

/// `offset` rounded up to the next token boundary (4 bytes).
fn align(offset: usize) -> Option<usize> {
    offset.checked_add(3).map(|o| o & !3)
}

/// One token of the structure block, with the offset of the token after it.
#[derive(Clone, Copy)]
enum Token<'a> {
    /// A node starts; its name (without NUL).
    BeginNode(&'a [u8]),
    EndNode,
    /// A property: its name offset in the strings block and its value.
    Property {
        name: u32,
        value: &'a [u8],
    },
    Nop,
    End,
}

/// A checked device tree blob.
#[derive(Clone, Copy)]
pub struct Blob<'a> {
    structure: &'a [u8],
    strings: &'a [u8],
    reservations: &'a [u8],
    size: usize,
}

impl<'a> Blob<'a> {
    /// Checks `data`, exactly one blob (`totalsize` bytes), whole.
    pub fn new(data: &'a [u8]) -> Result<Self, DtbError> {
        let header = |index: usize| word(data, index * 4).ok_or(DtbError::Truncated);
        let (total, off_struct, off_strings, off_reservations) =
            (header(1)?, header(2)?, header(3)?, header(4)?);
        let (version, last_compatible) = (header(5)?, header(6)?);
        if total as usize != data.len() {
            return Err(DtbError::Malformed("size differs from the blob's"));
        }
        if version < 16 || last_compatible > 17 {
            return Err(DtbError::Malformed("unsupported version"));
        }
        let size_strings = header(8)?;
        // Version 16 headers end before `size_dt_struct`: the block runs to the end.
        let size_struct = if version >= 17 {
            header(9)?
        } else {
            total.saturating_sub(off_struct)
        };
        let block = |offset: u32, size: u32| {
            let start = offset as usize;
            data.get(start..start.checked_add(size as usize)?)
        };
        let structure = block(off_struct, size_struct)
            .filter(|_| off_struct.is_multiple_of(4))
            .ok_or(DtbError::Malformed("structure block out of bounds"))?;
        let strings = block(off_strings, size_strings)
            .ok_or(DtbError::Malformed("strings block out of bounds"))?;
        let reservations = data
            .get(off_reservations as usize..)
            .filter(|_| off_reservations.is_multiple_of(8) && off_reservations >= 40)
            .ok_or(DtbError::Malformed("memory reservations out of bounds"))?;
        let blob = Self {
            structure,
            strings,
            reservations,
            size: data.len(),
        };
        blob.check_reservations()?;
        blob.check_structure()?;
        Ok(blob)
    }

    /// The blob's size in bytes.
    pub fn size(&self) -> usize {
        self.size
    }

    /// The reservation block ends with an all-zero entry inside the blob.
    fn check_reservations(&self) -> Result<(), DtbError> {
        let mut entries = self.reservations.chunks_exact(16);
        if entries.any(|entry| entry.iter().all(|&b| b == 0)) {
            Ok(())
        } else {
            Err(DtbError::Malformed("memory reservations not terminated"))
        }
    }

    /// The memory reservation block's entries: (address, size).
    pub fn reservations(&self) -> impl Iterator<Item = (u64, u64)> + 'a {
        self.reservations
            .chunks_exact(16)
            .map(|entry| {
                let half = |at: usize| {
                    entry
                        .get(at..at + 8)
                        .and_then(|b| b.try_into().ok())
                        .map_or(0, u64::from_be_bytes)
                };
                (half(0), half(8))
            })
            .take_while(|&(address, size)| address != 0 || size != 0)
    }

    /// The token at `at` in the structure block and the offset of the next one.
    fn token(&self, at: usize) -> Result<(Token<'a>, usize), DtbError> {
        let truncated = DtbError::Malformed("structure block truncated");
        let tag = word(self.structure, at).ok_or(truncated)?;
        let next = at + 4;
        Ok(match tag {
            FDT_BEGIN_NODE => {
                let (name, end) = c_string(self.structure, next)
                    .ok_or(DtbError::Malformed("node name not terminated"))?;
                (Token::BeginNode(name), align(end).ok_or(truncated)?)
            }
            FDT_END_NODE => (Token::EndNode, next),
            FDT_PROP => {
                let length = word(self.structure, next).ok_or(truncated)? as usize;
                let name = word(self.structure, next + 4).ok_or(truncated)?;
                let start = next + 8;
                let value = start
                    .checked_add(length)
                    .and_then(|end| self.structure.get(start..end))
                    .ok_or(DtbError::Malformed("property value out of bounds"))?;
                let after = align(start + length).ok_or(truncated)?;
                (Token::Property { name, value }, after)
            }
            FDT_NOP => (Token::Nop, next),
            FDT_END => (Token::End, next),
            _ => return Err(DtbError::Malformed("bad token in the structure block")),
        })
    }

    /// The name at `offset` in the strings block.
    fn string(&self, offset: u32) -> Option<&'a [u8]> {
        c_string(self.strings, offset as usize).map(|(name, _)| name)
    }

    /// One root node, balanced, property names inside the strings block, then `FDT_END`.
    fn check_structure(&self) -> Result<(), DtbError> {
        let mut at = 0;
        let mut depth = 0usize;
        let mut roots = 0;
        loop {
            let (token, next) = self.token(at)?;
            match token {
                Token::BeginNode(_) => {
                    if depth == 0 {
                        roots += 1;
                    }
                    if roots > 1 {
                        return Err(DtbError::Malformed("more than one root node"));
                    }
                    depth += 1;
                }
                Token::EndNode => {
                    depth = depth
                        .checked_sub(1)
                        .ok_or(DtbError::Malformed("unbalanced end of node"))?;
                }
                Token::Property { name, .. } => {
                    if depth == 0 {
                        return Err(DtbError::Malformed("property outside any node"));
                    }
                    if self.string(name).is_none() {
                        return Err(DtbError::Malformed("property name out of bounds"));
                    }
                }
                Token::Nop => {}
                Token::End if depth == 0 && roots == 1 => return Ok(()),
                Token::End => return Err(DtbError::Malformed("end inside a node")),
            }
            at = next;
        }
    }

    /// The root node.
    pub fn root(&self) -> Node<'a> {
        // The root's `FDT_BEGIN_NODE` is the first token that is not `FDT_NOP`.
        let mut at = 0;
        while let Ok((Token::Nop, next)) = self.token(at) {
            at = next;
        }
        Node {
            blob: *self,
            begin: at,
            parent_cells: Cells::DEFAULT,
        }
    }

    /// The offset just past the node whose `FDT_BEGIN_NODE` is at `begin`.
    fn end_of_node(&self, begin: usize) -> Option<usize> {
        let mut at = begin;
        let mut depth = 0usize;
        loop {
            let (token, next) = self.token(at).ok()?;
            match token {
                Token::BeginNode(_) => depth += 1,
                Token::EndNode => {
                    depth = depth.checked_sub(1)?;
                    if depth == 0 {
                        return Some(next);
                    }
                }
                Token::End => return None,
                Token::Property { .. } | Token::Nop => {}
            }
            at = next;
        }
    }
}

/// `#address-cells` and `#size-cells` of a bus: how its children's `reg` is encoded.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Cells {
    /// Cells of an address.
    pub address: u32,
    /// Cells of a size.
    pub size: u32,
}

impl Cells {
    /// What a node without the properties has (Devicetree Specification 2.3.5).
    pub const DEFAULT: Self = Self {
        address: 2,
        size: 1,
    };
}

/// A node of a checked blob.
#[derive(Clone, Copy)]
pub struct Node<'a> {
    blob: Blob<'a>,
    /// Offset of the node's `FDT_BEGIN_NODE` token in the structure block.
    begin: usize,
    /// The parent's cells, which the node's own `reg` uses.
    parent_cells: Cells,
}

impl<'a> Node<'a> {
    /// The name with its unit address (empty for the root, or if not UTF-8).
    pub fn name(&self) -> &'a str {
        match self.blob.token(self.begin) {
            Ok((Token::BeginNode(name), _)) => core::str::from_utf8(name).unwrap_or(""),
            _ => "",
        }
    }

    /// The node's properties: (name, value).
    pub fn properties(&self) -> impl Iterator<Item = (&'a str, &'a [u8])> + 'a {
        let blob = self.blob;
        let mut at = blob.token(self.begin).map_or(usize::MAX, |(_, next)| next);
        core::iter::from_fn(move || {
            loop {
                let (token, next) = blob.token(at).ok()?;
                at = next;
                match token {
                    Token::Property { name, value } => {
                        let name = core::str::from_utf8(blob.string(name)?).ok()?;
                        return Some((name, value));
                    }
                    Token::Nop => {}
                    _ => return None,
                }
            }
        })
    }

    /// The value of property `name`.
    pub fn property(&self, name: &str) -> Option<&'a [u8]> {
        self.properties()
            .find(|&(found, _)| found == name)
            .map(|(_, value)| value)
    }

    /// The node's children, in order.
    pub fn children(&self) -> impl Iterator<Item = Node<'a>> + 'a {
        let blob = self.blob;
        let cells = self.cells();
        let mut at = blob.token(self.begin).map_or(usize::MAX, |(_, next)| next);
        core::iter::from_fn(move || {
            loop {
                let (token, next) = blob.token(at).ok()?;
                match token {
                    Token::Property { .. } | Token::Nop => at = next,
                    Token::BeginNode(_) => {
                        let child = Node {
                            blob,
                            begin: at,
                            parent_cells: cells,
                        };
                        at = blob.end_of_node(at)?;
                        return Some(child);
                    }
                    Token::EndNode | Token::End => return None,
                }
            }
        })
    }

    /// The cells this node's children use (its `#address-cells`, `#size-cells`).
    pub fn cells(&self) -> Cells {
        let cell = |name: &str, default: u32| {
            self.property(name)
                .and_then(|value| value.try_into().ok())
                .map_or(default, u32::from_be_bytes)
        };
        Cells {
            address: cell("#address-cells", Cells::DEFAULT.address),
            size: cell("#size-cells", Cells::DEFAULT.size),
        }
    }

    /// The cells this node's own `reg` uses: its parent's.
    pub fn parent_cells(&self) -> Cells {
        self.parent_cells
    }
}
