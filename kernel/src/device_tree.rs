//! The flattened device tree (Devicetree Specification v0.4, chapter 5) as the kernel reads
//! it: a blob checked whole before anything trusts it, found nodes that remember the buses
//! above them, `reg` translated through those buses' `ranges`, memory banks, `stdout-path`.
//!
//! The format itself is [`flat`]'s: it checks the whole blob up front and skips `FDT_NOP`
//! tokens, which firmware and QEMU leave where they deleted a node or a property. Nothing
//! here panics on a malformed blob: a bad blob is a [`DtbError`], a bad property reads as
//! absent.

mod flat;

use core::fmt;
pub use flat::{Cells, Node};

/// Largest blob accepted: the Linux arm64 boot protocol's limit on a device tree (2 MiB).
pub const MAX_SIZE: usize = 2 << 20;
/// Size of the blob header (Devicetree Specification 5.2).
pub const HEADER_SIZE: usize = 40;
/// The header's magic number, big-endian.
const MAGIC: u32 = 0xD00D_FEED;
/// Deepest node the walks visit (root is depth 0); deeper nodes are ignored. Real trees
/// nest a handful of levels; the bound keeps the kernel stack small on hostile input.
pub const MAX_DEPTH: usize = 16;
/// Most memory banks read from the tree; more are ignored (an 8 GiB Pi 4 has four).
pub const MAX_BANKS: usize = 16;

/// Why a blob is not a usable device tree.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DtbError {
    /// The blob address is not 8-byte aligned (Devicetree Specification 5.1) or is zero.
    BadAddress(u64),
    /// Fewer bytes than the header, or than the header's `totalsize`.
    Truncated,
    /// The first word is not the FDT magic number.
    BadMagic(u32),
    /// The header's `totalsize` is smaller than a header or larger than [`MAX_SIZE`].
    BadSize(u32),
    /// The structure does not validate; what was wrong.
    Malformed(&'static str),
}

impl fmt::Display for DtbError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::BadAddress(address) => write!(f, "bad device tree address {address:#x}"),
            Self::Truncated => write!(f, "device tree truncated"),
            Self::BadMagic(magic) => write!(f, "no device tree (magic {magic:#010x})"),
            Self::BadSize(size) => write!(f, "device tree size {size} out of bounds"),
            Self::Malformed(what) => write!(f, "malformed device tree: {what}"),
        }
    }
}

/// The blob's size from its first bytes (at least the magic and `totalsize` words), checked
/// against [`MAX_SIZE`]: how much memory may be read from a blob's address.
pub fn blob_size(header: &[u8]) -> Result<usize, DtbError> {
    let word = |at: usize| {
        header
            .get(at..at + 4)
            .and_then(|bytes| bytes.try_into().ok())
            .map(u32::from_be_bytes)
            .ok_or(DtbError::Truncated)
    };
    let magic = word(0)?;
    if magic != MAGIC {
        return Err(DtbError::BadMagic(magic));
    }
    let size = word(4)?;
    if !(HEADER_SIZE..=MAX_SIZE).contains(&(size as usize)) {
        return Err(DtbError::BadSize(size));
    }
    Ok(size as usize)
}

/// A physical region: where and how long.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Region {
    /// First byte.
    pub start: u64,
    /// Length in bytes.
    pub size: u64,
}

impl Region {
    /// End (exclusive), if it does not overflow.
    pub fn end(&self) -> Option<u64> {
        self.start.checked_add(self.size)
    }

    /// Whether `address` lies inside.
    pub fn contains(&self, address: u64) -> bool {
        self.start <= address && address - self.start < self.size
    }
}

/// Regions read from the tree, in tree order (at most [`MAX_BANKS`]): the memory nodes'
/// banks, or the reserved-memory regions.
#[derive(Clone, Copy, Debug, Default)]
pub struct Banks {
    banks: [Region; MAX_BANKS],
    len: usize,
}

impl Banks {
    /// The banks, as a slice.
    pub fn as_slice(&self) -> &[Region] {
        &self.banks[..self.len]
    }

    fn push(&mut self, bank: Region) {
        if let Some(slot) = self.banks.get_mut(self.len) {
            *slot = bank;
            self.len += 1;
        }
    }
}

/// A validated device tree blob.
#[derive(Clone, Copy)]
pub struct DeviceTree<'a> {
    blob: flat::Blob<'a>,
}

impl<'a> DeviceTree<'a> {
    /// Checks `bytes` (which may run past the blob's `totalsize`) as a whole device tree.
    pub fn new(bytes: &'a [u8]) -> Result<Self, DtbError> {
        let size = blob_size(bytes)?;
        let blob = bytes.get(..size).ok_or(DtbError::Truncated)?;
        Ok(Self {
            blob: flat::Blob::new(blob)?,
        })
    }

    /// The blob's size in bytes (its header's `totalsize`).
    pub fn size(&self) -> usize {
        self.blob.size()
    }

    /// The root's `model`, if it is a string.
    pub fn model(&self) -> Option<&'a str> {
        string(self.blob.root(), "model")
    }

    /// The memory reservation block's entries (Devicetree Specification 5.3).
    pub fn memory_reservations(&self) -> impl Iterator<Item = Region> + 'a {
        self.blob
            .reservations()
            .map(|(start, size)| Region { start, size })
    }

    /// Every non-empty `reg` entry of every enabled memory node (`device_type = "memory"`,
    /// a child of the root).
    pub fn memory_banks(&self) -> Banks {
        let mut banks = Banks::default();
        let root = self.root();
        for node in self.blob.root().children() {
            if string(node, "device_type") != Some("memory") || !enabled(node) {
                continue;
            }
            let memory = root.child(node);
            for bank in memory.regions().flatten() {
                if bank.size != 0 {
                    banks.push(bank);
                }
            }
        }
        banks
    }

    /// Every non-empty `reg` entry of every enabled child of `/reserved-memory`
    /// (Devicetree Specification 3.5.2), `no-map` or not: memory the firmware keeps for
    /// itself. A dynamic reservation (`size` and `alloc-ranges`, no `reg`, such as the Pi's
    /// `linux,cma` pool) has no address yet and is not listed. At most [`MAX_BANKS`].
    pub fn reserved_memory(&self) -> Banks {
        let mut regions = Banks::default();
        let Some(parent) = self.find_path("/reserved-memory") else {
            return regions;
        };
        for node in parent.node.children().filter(|node| enabled(*node)) {
            for region in parent.child(node).regions().flatten() {
                if region.size != 0 {
                    regions.push(region);
                }
            }
        }
        regions
    }

    /// The first enabled node, in tree order, compatible with any of `compatible`.
    pub fn find_compatible(&self, compatible: &[&str]) -> Option<Located<'a>> {
        self.find(&mut |node| {
            enabled(node) && compatible_list(node).any(|c| compatible.contains(&c))
        })
    }

    /// The node whose `phandle` (or older `linux,phandle`) is `phandle`.
    pub fn by_phandle(&self, phandle: u32) -> Option<Located<'a>> {
        self.find(&mut |node| {
            cell(node, "phandle").or_else(|| cell(node, "linux,phandle")) == Some(phandle)
        })
    }

    /// The input clock rate of a device: its own `clock-frequency`, else that of the clock
    /// its first `clocks` entry points at (a fixed clock, Devicetree Specification 4.1.1
    /// and Linux's `fixed-clock` binding). None when the clock is a provider the kernel
    /// does not model (the Pi's clock manager).
    pub fn clock_frequency(&self, device: Node<'a>) -> Option<u32> {
        cell(device, "clock-frequency").or_else(|| {
            let clock = self.by_phandle(cell(device, "clocks")?)?;
            cell(clock.node(), "clock-frequency")
        })
    }

    /// The first node, in tree order, for which `wanted` holds.
    pub fn find(&self, wanted: &mut dyn FnMut(Node<'a>) -> bool) -> Option<Located<'a>> {
        find_below(self.root(), wanted)
    }

    /// The node at `path` (components match a node's full name, or its name without the
    /// unit address when the component has none).
    pub fn find_path(&self, path: &str) -> Option<Located<'a>> {
        let mut located = self.root();
        for component in path.split('/').filter(|c| !c.is_empty()) {
            let child = located.node.children().find(|child| {
                let name = child.name();
                name == component
                    || (!component.contains('@') && name.split('@').next() == Some(component))
            })?;
            if located.depth + 1 > MAX_DEPTH {
                return None;
            }
            located = located.child(child);
        }
        Some(located)
    }

    /// The node `/chosen/stdout-path` names: a path or an alias, options after `:` ignored.
    pub fn stdout(&self) -> Option<Located<'a>> {
        let chosen = self.find_path("/chosen")?.node();
        let value = string(chosen, "stdout-path")?;
        let name = value.split(':').next()?;
        let path = if name.starts_with('/') {
            name
        } else {
            string(self.find_path("/aliases")?.node(), name)?
        };
        self.find_path(path)
    }

    fn root(&self) -> Located<'a> {
        Located {
            node: self.blob.root(),
            ancestors: [None; MAX_DEPTH],
            depth: 0,
        }
    }
}

/// Depth-first search from `at` (included), at most [`MAX_DEPTH`] deep.
fn find_below<'a>(
    at: Located<'a>,
    wanted: &mut dyn FnMut(Node<'a>) -> bool,
) -> Option<Located<'a>> {
    if wanted(at.node) {
        return Some(at);
    }
    if at.depth >= MAX_DEPTH {
        return None;
    }
    at.node
        .children()
        .find_map(|child| find_below(at.child(child), wanted))
}

/// Whether `node`'s `status` is absent, `okay` or `ok` (Devicetree Specification 2.3.4).
fn enabled(node: Node<'_>) -> bool {
    match node.property("status") {
        None => true,
        Some(_) => matches!(string(node, "status"), Some("okay" | "ok")),
    }
}

/// The property `name` of `node` as one NUL-terminated string.
pub fn string<'a>(node: Node<'a>, name: &str) -> Option<&'a str> {
    core::str::from_utf8(node.property(name)?.strip_suffix(b"\0")?).ok()
}

/// The first cell of the property `name` of `node`.
pub fn cell(node: Node<'_>, name: &str) -> Option<u32> {
    let value = node.property(name)?;
    Some(u32::from_be_bytes(value.get(..4)?.try_into().ok()?))
}

/// The strings of `node`'s `compatible` list.
fn compatible_list<'a>(node: Node<'a>) -> impl Iterator<Item = &'a str> {
    let list = node.property("compatible").unwrap_or_default();
    list.split(|&b| b == 0)
        .filter(|s| !s.is_empty())
        .filter_map(|s| core::str::from_utf8(s).ok())
}

/// A number of `cells` big-endian cells, if it fits in 64 bits.
fn number(cells: &[u8]) -> Option<u64> {
    if cells.len() > 8 {
        return None;
    }
    Some(
        cells
            .chunks_exact(4)
            .filter_map(|cell| cell.try_into().ok())
            .fold(0, |value, cell| {
                (value << 32) | u64::from(u32::from_be_bytes(cell))
            }),
    )
}

/// `value` split into entries of `fields` cells each, each entry split into its fields;
/// nothing if the value is not a whole number of entries.
fn entries<const N: usize>(value: &[u8], fields: [u32; N]) -> impl Iterator<Item = [&[u8]; N]> {
    let bytes = |cells: u32| (cells as usize).saturating_mul(4);
    let entry = fields
        .iter()
        .fold(0usize, |sum, &cells| sum.saturating_add(bytes(cells)));
    let whole = entry != 0 && value.len().is_multiple_of(entry);
    let value = if whole { value } else { &[] };
    value.chunks_exact(entry.max(1)).map(move |mut rest| {
        fields.map(|cells| {
            let (field, tail) = rest.split_at(bytes(cells).min(rest.len()));
            rest = tail;
            field
        })
    })
}

/// A node found in the tree, with its ancestors: the buses its `reg` is relative to.
#[derive(Clone, Copy)]
pub struct Located<'a> {
    node: Node<'a>,
    /// Root first; `ancestors[..depth]` are set.
    ancestors: [Option<Node<'a>>; MAX_DEPTH],
    depth: usize,
}

impl<'a> Located<'a> {
    /// The node itself.
    pub fn node(&self) -> Node<'a> {
        self.node
    }

    /// The node's name, with its unit address.
    pub fn name(&self) -> &'a str {
        self.node.name()
    }

    /// Whether the node's `compatible` list holds `compatible`.
    pub fn is_compatible(&self, compatible: &str) -> bool {
        compatible_list(self.node).any(|c| c == compatible)
    }

    /// Each `reg` entry as a CPU physical region, translated through the `ranges` of every
    /// bus above the node (Devicetree Specification 2.3.8); `None` for an entry that cannot
    /// be read or translated. Empty if `reg` is absent or malformed.
    pub fn regions(&self) -> impl Iterator<Item = Option<Region>> + '_ {
        let cells = self.node.parent_cells();
        let reg = self.node.property("reg").unwrap_or_default();
        entries(reg, [cells.address, cells.size]).map(move |[address, size]| {
            Some(Region {
                start: self.translate(number(address)?)?,
                size: number(size)?,
            })
        })
    }

    /// The first `reg` entry, translated.
    pub fn first_region(&self) -> Option<Region> {
        self.regions().next().flatten()
    }

    /// `address`, relative to the node's parent bus, as a CPU physical address: through each
    /// bus's `ranges`, innermost first. An empty `ranges` is the identity; a bus without
    /// one, or an address no range covers, is not reachable from the CPU.
    fn translate(&self, mut address: u64) -> Option<u64> {
        let buses = self.ancestors.get(1..self.depth)?;
        for bus in buses.iter().rev() {
            let bus = (*bus)?;
            let ranges = bus.property("ranges")?;
            if ranges.is_empty() {
                continue;
            }
            let fields = [
                bus.cells().address,
                bus.parent_cells().address,
                bus.cells().size,
            ];
            address = entries(ranges, fields).find_map(|[child, parent, length]| {
                let (child, parent, length) = (number(child)?, number(parent)?, number(length)?);
                let covered = Region {
                    start: child,
                    size: length,
                };
                covered
                    .contains(address)
                    .then(|| parent.checked_add(address - child))
                    .flatten()
            })?;
        }
        Some(address)
    }

    fn child(&self, node: Node<'a>) -> Self {
        let mut ancestors = self.ancestors;
        if let Some(slot) = ancestors.get_mut(self.depth) {
            *slot = Some(self.node);
        }
        Self {
            node,
            ancestors,
            depth: (self.depth + 1).min(MAX_DEPTH),
        }
    }
}

#[cfg(test)]
mod tests;
