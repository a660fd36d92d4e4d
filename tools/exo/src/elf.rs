//! Reading the two kinds of ELF the image builder needs: the kernel (load segments and
//! the `__image_start`/`__image_end` symbols) and guest programs (entry and load segments).

use std::collections::HashMap;
use std::path::Path;

use anyhow::{Context, bail};
use exo_abi::Rights;

/// One `PT_LOAD` segment.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LoadSegment {
    /// `p_vaddr`.
    pub vaddr: u64,
    /// `p_paddr`.
    pub paddr: u64,
    /// The bytes in the file (`p_filesz` of them).
    pub data: Vec<u8>,
    /// `p_memsz` (at least `data.len()`).
    pub mem_size: u64,
    /// `p_flags` as access rights.
    pub rights: Rights,
}

/// What the image builder needs from an AArch64 ELF file.
#[derive(Clone, Debug)]
pub struct Elf {
    /// `e_entry`.
    pub entry: u64,
    /// The `PT_LOAD` segments with a non-zero memory size, in file order.
    pub segments: Vec<LoadSegment>,
    /// Symbol values from `.symtab`, by name.
    pub symbols: HashMap<String, u64>,
    /// Code symbols (functions and assembly labels) as `(address, size, name)`, sorted by
    /// address.
    pub functions: Vec<(u64, u64, String)>,
}

impl Elf {
    /// Reads and parses `path`.
    pub fn read(path: &Path) -> anyhow::Result<Self> {
        let bytes = std::fs::read(path).with_context(|| format!("reading {}", path.display()))?;
        Self::parse(&bytes).with_context(|| format!("{} is not a usable ELF file", path.display()))
    }

    /// Parses a little-endian ELF64 file for AArch64. Every offset, size and index in the
    /// file is checked against the file: a malformed file is an error, never a panic.
    pub fn parse(bytes: &[u8]) -> anyhow::Result<Self> {
        if bytes.get(..4) != Some(b"\x7fELF") {
            bail!("no ELF magic number");
        }
        if bytes.len() < EHDR_SIZE || bytes[4] != ELFCLASS64 || bytes[5] != ELFDATA2LSB {
            bail!("not a little-endian 64-bit ELF file");
        }
        if field(bytes, 18, 2) != Some(EM_AARCH64) {
            bail!("not an AArch64 ELF file");
        }
        let entry = field(bytes, 24, 8).context("truncated ELF header")?;
        let mut segments = Vec::new();
        for header in table(bytes, 32, 54, PHDR_SIZE).context("program headers")? {
            let p = |at, size| field(header, at, size).unwrap_or(0);
            let (kind, flags, offset, file_size, mem_size) =
                (p(0, 4), p(4, 4), p(8, 8), p(32, 8), p(40, 8));
            if kind != PT_LOAD || mem_size == 0 {
                continue;
            }
            if file_size > mem_size {
                bail!("a load segment has more bytes in the file than in memory");
            }
            let data =
                slice(bytes, offset, file_size).context("a load segment lies outside the file")?;
            let mut rights = Rights::empty();
            rights.set(Rights::READ, flags & PF_R != 0);
            rights.set(Rights::WRITE, flags & PF_W != 0);
            rights.set(Rights::EXECUTE, flags & PF_X != 0);
            segments.push(LoadSegment {
                vaddr: p(16, 8),
                paddr: p(24, 8),
                data: data.to_vec(),
                mem_size,
                rights,
            });
        }
        let (symbols, functions) = read_symbols(bytes)?;
        Ok(Self {
            entry,
            segments,
            symbols,
            functions,
        })
    }

    /// The value of symbol `name`.
    pub fn symbol(&self, name: &str) -> anyhow::Result<u64> {
        self.symbols
            .get(name)
            .copied()
            .with_context(|| format!("no symbol `{name}`"))
    }
}

/// Size of the ELF64 file header.
const EHDR_SIZE: usize = 64;
/// Size of an ELF64 program header.
const PHDR_SIZE: usize = 56;
/// Size of an ELF64 section header.
const SHDR_SIZE: usize = 64;
/// Size of an ELF64 symbol.
const SYM_SIZE: usize = 24;
/// `e_ident[EI_CLASS]` of a 64-bit file.
const ELFCLASS64: u8 = 2;
/// `e_ident[EI_DATA]` of a little-endian file.
const ELFDATA2LSB: u8 = 1;
/// `e_machine` of AArch64.
const EM_AARCH64: u64 = 0xB7;
/// `p_type` of a load segment.
const PT_LOAD: u64 = 1;
/// `p_flags` bits.
const PF_X: u64 = 1;
const PF_W: u64 = 2;
const PF_R: u64 = 4;
/// `sh_type` of a symbol table.
const SHT_SYMTAB: u64 = 2;
/// `st_info` types of code: untyped (assembly labels) and functions.
const STT_NOTYPE: u8 = 0;
const STT_FUNC: u8 = 2;

/// The little-endian unsigned field of `size` bytes at `at`, if it lies in `bytes`.
fn field(bytes: &[u8], at: usize, size: usize) -> Option<u64> {
    let field = bytes.get(at..at.checked_add(size)?)?;
    let mut word = [0u8; 8];
    word[..size].copy_from_slice(field);
    Some(u64::from_le_bytes(word))
}

/// `size` bytes at file offset `offset`, if they lie in `bytes`.
fn slice(bytes: &[u8], offset: u64, size: u64) -> Option<&[u8]> {
    let start = usize::try_from(offset).ok()?;
    bytes.get(start..start.checked_add(usize::try_from(size).ok()?)?)
}

/// The entries of a header table whose offset is the 8-byte field at `offset_at` of the
/// ELF header and whose entry size and count are the 2-byte fields at `size_at` and
/// `size_at + 2`. An empty table is fine; one whose entries are not `entry` bytes or do not
/// lie in the file is not.
fn table(
    bytes: &[u8],
    offset_at: usize,
    size_at: usize,
    entry: usize,
) -> anyhow::Result<Vec<&[u8]>> {
    let offset = field(bytes, offset_at, 8).context("truncated ELF header")?;
    let size = field(bytes, size_at, 2).context("truncated ELF header")?;
    let count = field(bytes, size_at + 2, 2).context("truncated ELF header")?;
    if count == 0 {
        return Ok(Vec::new());
    }
    if size != entry as u64 {
        bail!("entries of {size} bytes, expected {entry}");
    }
    let all = slice(bytes, offset, count * size).context("the table lies outside the file")?;
    Ok(all.chunks_exact(entry).collect())
}

/// Code symbols as `(address, size, name)`.
type Functions = Vec<(u64, u64, String)>;

/// Symbol values from every `SHT_SYMTAB` section by name, and the code symbols as
/// `(address, size, name)` sorted by address. Names are read from the string table the
/// symbol table links to; symbols whose name is not a NUL-terminated UTF-8 string in it are
/// skipped.
fn read_symbols(bytes: &[u8]) -> anyhow::Result<(HashMap<String, u64>, Functions)> {
    let sections = table(bytes, 40, 58, SHDR_SIZE).context("section headers")?;
    let mut symbols = HashMap::new();
    let mut functions = Vec::new();
    let contents = |header: &[u8]| {
        let offset = field(header, 24, 8).unwrap_or(0);
        let size = field(header, 32, 8).unwrap_or(0);
        slice(bytes, offset, size)
    };
    for header in &sections {
        if field(header, 4, 4) != Some(SHT_SYMTAB) {
            continue;
        }
        let entries = contents(header).context("a symbol table lies outside the file")?;
        let strings = field(header, 40, 4)
            .and_then(|link| sections.get(usize::try_from(link).ok()?))
            .and_then(|strtab| contents(strtab))
            .unwrap_or(&[]);
        for entry in entries.chunks_exact(SYM_SIZE) {
            let e = |at, size| field(entry, at, size).unwrap_or(0);
            let name = usize::try_from(e(0, 4))
                .ok()
                .and_then(|at| strings.get(at..))
                .and_then(|tail| {
                    tail.split(|&b| b == 0)
                        .next()
                        .filter(|n| n.len() < tail.len())
                })
                .and_then(|name| std::str::from_utf8(name).ok());
            let Some(name) = name.filter(|n| !n.is_empty()) else {
                continue;
            };
            let (value, size) = (e(8, 8), e(16, 8));
            symbols.insert(name.to_owned(), value);
            // Functions, and assembly labels (untyped, often sizeless); not the `$x`/`$d`
            // mapping symbols.
            let kind = entry[4] & 0xF;
            if matches!(kind, STT_FUNC | STT_NOTYPE) && !name.starts_with('$') {
                functions.push((value, size, name.to_owned()));
            }
        }
    }
    functions.sort();
    Ok((symbols, functions))
}

/// Writes minimal AArch64 ELF files for tests: load segments and a symbol table.
#[cfg(test)]
pub(crate) mod synthetic {
    /// A segment to write: `(address, file bytes, memory size, p_flags)`.
    pub type Segment<'a> = (u64, &'a [u8], u64, u32);

    /// Pads `payload` (which starts at file offset `at`) to an 8-byte boundary.
    fn pad(payload: &mut Vec<u8>, at: u64) {
        while !(at + payload.len() as u64).is_multiple_of(8) {
            payload.push(0);
        }
    }

    /// An ELF64 AArch64 executable with `segments` (`p_paddr == p_vaddr`) and `symbols`.
    pub fn elf(entry: u64, segments: &[Segment<'_>], symbols: &[(&str, u64)]) -> Vec<u8> {
        let put16 = |b: &mut Vec<u8>, v: u16| b.extend_from_slice(&v.to_le_bytes());
        let put32 = |b: &mut Vec<u8>, v: u32| b.extend_from_slice(&v.to_le_bytes());
        let put64 = |b: &mut Vec<u8>, v: u64| b.extend_from_slice(&v.to_le_bytes());
        let phoff = 64u64;
        let data_at = phoff + 56 * segments.len() as u64;
        // Segment data, then .strtab, .symtab, .shstrtab, then section headers.
        let mut payload = Vec::new();
        let mut offsets = Vec::new();
        for (_, bytes, _, _) in segments {
            offsets.push(data_at + payload.len() as u64);
            payload.extend_from_slice(bytes);
        }
        let mut strtab = vec![0u8];
        let mut symtab = vec![0u8; 24];
        for (name, value) in symbols {
            let name_at = strtab.len() as u32;
            strtab.extend_from_slice(name.as_bytes());
            strtab.push(0);
            put32(&mut symtab, name_at);
            symtab.extend_from_slice(&[0x10, 0]); // STB_GLOBAL, STT_NOTYPE; st_other
            put16(&mut symtab, 0xFFF1); // SHN_ABS
            put64(&mut symtab, *value);
            put64(&mut symtab, 0);
        }
        let shstrtab = b"\0.strtab\0.symtab\0.shstrtab\0".to_vec();
        pad(&mut payload, data_at);
        let strtab_at = data_at + payload.len() as u64;
        payload.extend_from_slice(&strtab);
        pad(&mut payload, data_at);
        let symtab_at = data_at + payload.len() as u64;
        payload.extend_from_slice(&symtab);
        let shstrtab_at = data_at + payload.len() as u64;
        payload.extend_from_slice(&shstrtab);
        pad(&mut payload, data_at);
        let shoff = data_at + payload.len() as u64;

        let mut out = Vec::new();
        out.extend_from_slice(b"\x7fELF\x02\x01\x01\0\0\0\0\0\0\0\0\0");
        put16(&mut out, 2); // ET_EXEC
        put16(&mut out, 0xB7); // EM_AARCH64
        put32(&mut out, 1);
        put64(&mut out, entry);
        put64(&mut out, phoff);
        put64(&mut out, shoff);
        put32(&mut out, 0);
        put16(&mut out, 64);
        put16(&mut out, 56);
        put16(&mut out, segments.len() as u16);
        put16(&mut out, 64);
        put16(&mut out, 4);
        put16(&mut out, 3); // e_shstrndx
        for ((address, bytes, mem_size, flags), offset) in segments.iter().zip(&offsets) {
            put32(&mut out, 1); // PT_LOAD
            put32(&mut out, *flags);
            put64(&mut out, *offset);
            put64(&mut out, *address);
            put64(&mut out, *address);
            put64(&mut out, bytes.len() as u64);
            put64(&mut out, *mem_size);
            put64(&mut out, 0x1000);
        }
        out.extend_from_slice(&payload);
        let section = |out: &mut Vec<u8>,
                       name: u32,
                       kind: u32,
                       at: u64,
                       size: u64,
                       link: u32,
                       entsize: u64| {
            put32(out, name);
            put32(out, kind);
            put64(out, 0);
            put64(out, 0);
            put64(out, at);
            put64(out, size);
            put32(out, link);
            put32(out, if kind == 2 { 1 } else { 0 });
            put64(out, 8);
            put64(out, entsize);
        };
        section(&mut out, 0, 0, 0, 0, 0, 0);
        section(&mut out, 1, 3, strtab_at, strtab.len() as u64, 0, 0);
        section(&mut out, 9, 2, symtab_at, symtab.len() as u64, 1, 24);
        section(&mut out, 17, 3, shstrtab_at, shstrtab.len() as u64, 0, 0);
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_segments_rights_entry_and_symbols() {
        let bytes = synthetic::elf(
            0x4000_0010,
            &[
                (0x4000_0000, &[1, 2, 3, 4], 0x10, 5),
                (0x4000_1000, &[9], 0x2000, 6),
                (0x5000_0000, &[], 0, 4),
            ],
            &[("__image_start", 0x4008_0000), ("__image_end", 0x4009_0000)],
        );
        let elf = Elf::parse(&bytes).unwrap();
        assert_eq!(elf.entry, 0x4000_0010);
        assert_eq!(elf.segments.len(), 2, "empty segments are skipped");
        assert_eq!(elf.segments[0].data, [1, 2, 3, 4]);
        assert_eq!(elf.segments[0].rights, Rights::READ | Rights::EXECUTE);
        assert_eq!(elf.segments[1].rights, Rights::READ_WRITE);
        assert_eq!(elf.segments[1].mem_size, 0x2000);
        assert_eq!(elf.symbol("__image_end").unwrap(), 0x4009_0000);
        assert!(elf.symbol("missing").is_err());
    }

    #[test]
    fn refuses_what_is_not_an_aarch64_elf() {
        assert!(Elf::parse(b"hello").is_err());
        let mut bytes = synthetic::elf(0, &[], &[]);
        bytes[18] = 0x3E; // EM_X86_64
        assert!(
            Elf::parse(&bytes)
                .unwrap_err()
                .to_string()
                .contains("AArch64")
        );
    }

    /// Found by the `elf` fuzz target: the `xmas-elf` reader this replaced panicked on most.
    #[test]
    fn malformed_files_are_errors_not_panics() {
        let good = synthetic::elf(0x4000_0000, &[(0x4000_0000, &[1, 2], 0x10, 5)], &[("s", 1)]);
        // Program headers past the end of the file (e_phnum = 0x100).
        let mut bytes = good.clone();
        bytes[56..58].copy_from_slice(&0x100u16.to_le_bytes());
        let error = Elf::parse(&bytes).unwrap_err();
        assert!(
            format!("{error:#}").contains("outside the file"),
            "{error:#}"
        );
        // Section headers past the end of the file.
        let mut bytes = good.clone();
        bytes[40..48].copy_from_slice(&u64::MAX.to_le_bytes());
        assert!(Elf::parse(&bytes).is_err());
        // A symbol table whose size runs past the end of the file: section 2's `sh_size`.
        let mut bytes = good.clone();
        let shoff = u64::from_le_bytes(bytes[40..48].try_into().unwrap()) as usize;
        bytes[shoff + 2 * 64 + 32..shoff + 2 * 64 + 40]
            .copy_from_slice(&(1u64 << 40).to_le_bytes());
        assert!(Elf::parse(&bytes).is_err());
        // A load segment of a huge file size.
        let mut bytes = good.clone();
        bytes[64 + 32..64 + 40].copy_from_slice(&u64::MAX.to_le_bytes());
        bytes[64 + 40..64 + 48].copy_from_slice(&u64::MAX.to_le_bytes());
        assert!(Elf::parse(&bytes).is_err());
        // Truncated anywhere: an error or a smaller file, never a panic.
        for len in 0..good.len() {
            let _ = Elf::parse(&good[..len]);
        }
    }

    #[test]
    fn symbols_with_bad_names_are_skipped() {
        let mut bytes = synthetic::elf(0, &[], &[("good", 1), ("bad", 2)]);
        // Make "bad" invalid UTF-8.
        let at = bytes.windows(4).position(|w| w == b"bad\0").unwrap();
        bytes[at] = 0xFF;
        let elf = Elf::parse(&bytes).unwrap();
        assert_eq!(elf.symbol("good").unwrap(), 1);
        assert_eq!(elf.symbols.len(), 1);
        // The same file one byte off its allocation's alignment parses the same.
        let mut shifted = vec![0u8];
        shifted.extend_from_slice(&bytes);
        assert_eq!(Elf::parse(&shifted[1..]).unwrap().symbols, elf.symbols);
    }
}
