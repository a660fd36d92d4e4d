//! Reading the two kinds of ELF the image builder needs: the kernel (load segments and
//! the `__image_start`/`__image_end` symbols) and guest programs (entry and load segments).

use std::collections::HashMap;
use std::path::Path;

use anyhow::{Context, bail};
use exo_abi::Rights;
use xmas_elf::ElfFile;
use xmas_elf::header::{Class, Data, Machine};
use xmas_elf::program::Type;
use xmas_elf::sections::SectionData;
use xmas_elf::symbol_table::Entry;

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

    /// Parses a little-endian ELF64 file for AArch64.
    pub fn parse(bytes: &[u8]) -> anyhow::Result<Self> {
        if bytes.get(..4) != Some(b"\x7fELF") {
            bail!("no ELF magic number");
        }
        let elf = ElfFile::new(bytes).map_err(|e| anyhow::anyhow!("{e}"))?;
        if elf.header.pt1.class() != Class::SixtyFour || elf.header.pt1.data() != Data::LittleEndian
        {
            bail!("not a little-endian 64-bit ELF file");
        }
        if elf.header.pt2.machine().as_machine() != Machine::AArch64 {
            bail!("not an AArch64 ELF file");
        }
        let mut segments = Vec::new();
        for header in elf.program_iter() {
            if header.get_type() != Ok(Type::Load) || header.mem_size() == 0 {
                continue;
            }
            let (offset, file_size) = (header.offset(), header.file_size());
            if file_size > header.mem_size() {
                bail!("a load segment has more bytes in the file than in memory");
            }
            let data = usize::try_from(offset)
                .ok()
                .zip(usize::try_from(file_size).ok())
                .and_then(|(start, len)| bytes.get(start..start.checked_add(len)?))
                .context("a load segment lies outside the file")?;
            let flags = header.flags();
            let mut rights = Rights::empty();
            rights.set(Rights::READ, flags.is_read());
            rights.set(Rights::WRITE, flags.is_write());
            rights.set(Rights::EXECUTE, flags.is_execute());
            segments.push(LoadSegment {
                vaddr: header.virtual_addr(),
                paddr: header.physical_addr(),
                data: data.to_vec(),
                mem_size: header.mem_size(),
                rights,
            });
        }
        let mut symbols = HashMap::new();
        let mut functions = Vec::new();
        for section in elf.section_iter() {
            if let Ok(SectionData::SymbolTable64(entries)) = section.get_data(&elf) {
                for entry in entries {
                    if let Ok(name) = entry.get_name(&elf)
                        && !name.is_empty()
                    {
                        symbols.insert(name.to_owned(), entry.value());
                        // Functions, and assembly labels (untyped, often sizeless); not the
                        // `$x`/`$d` mapping symbols.
                        let code = matches!(
                            entry.get_type(),
                            Ok(xmas_elf::symbol_table::Type::Func
                                | xmas_elf::symbol_table::Type::NoType)
                        ) && !name.starts_with('$');
                        if code {
                            functions.push((entry.value(), entry.size(), name.to_owned()));
                        }
                    }
                }
            }
        }
        Ok(Self {
            entry: elf.header.pt2.entry_point(),
            segments,
            symbols,
            functions: {
                functions.sort();
                functions
            },
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
}
