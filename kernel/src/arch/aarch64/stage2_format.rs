//! The VMSAv8-64 stage-2 descriptor encoding (4 KiB granule, 48-bit output addresses).
//!
//! Pure bit manipulation, so it builds and is tested on any host. References are to the
//! Arm Architecture Reference Manual for A-profile, DDI 0487, section D8.3 "Translation
//! table descriptor formats" (the VMSAv8-64 table, block and page descriptors and their
//! stage-2 attribute fields), with the field meanings from chapter D8's sections on stage 2
//! memory type and Cacheability attributes (MemAttr), stage 2 data access permissions
//! (S2AP) and instruction execution permissions (XN).
//!
//! Layout used here (FEAT_LPA2 off, `VTCR_EL2.DS == 0`; FEAT_S2FWB off, `HCR_EL2.FWB == 0`):
//!
//! | bits    | table descriptor        | block / page descriptor                        |
//! |---------|-------------------------|------------------------------------------------|
//! | \[1:0\]   | `0b11`                  | `0b01` block (levels 1, 2); `0b11` page (level 3) |
//! | \[5:2\]   | ignored                 | MemAttr\[3:0\]                                   |
//! | \[7:6\]   | ignored                 | S2AP\[1:0\]                                      |
//! | \[9:8\]   | ignored                 | SH\[1:0\]                                        |
//! | \[10\]    | ignored                 | AF                                             |
//! | \[47:12\] | next-level table address | output address (block: \[47:21\] or \[47:30\])     |
//! | \[54:53\] | RES0                    | XN\[1:0\]                                        |
//! | \[58:55\] | ignored                 | reserved for software use, ignored here        |
//!
//! Stage-2 table descriptors carry no hierarchical attributes (no APTable/XNTable), so the
//! rights live in the leaves only.

use exo_abi::PhysAddr;
use exo_abi::info::MemoryKind;

use crate::mem::stage2::{Attributes, DescriptorFormat, Entry, LAST_LEVEL};

/// The real AArch64 stage-2 descriptor format.
pub struct Aarch64Stage2;

/// Bit 0: the descriptor is valid.
const VALID: u64 = 1 << 0;
/// Bit 1 of a valid descriptor: table (levels 0 to 2) or page (level 3); clear for a block.
const TABLE_OR_PAGE: u64 = 1 << 1;
/// Descriptor type field, bits\[1:0\].
const TYPE_MASK: u64 = 0b11;
/// Next-level table address / page output address, bits\[47:12\].
const ADDRESS_MASK: u64 = 0x0000_FFFF_FFFF_F000;

/// MemAttr\[3:0\], bits\[5:2\].
const MEMATTR_SHIFT: u32 = 2;
/// Mask of MemAttr.
const MEMATTR_MASK: u64 = 0b1111 << MEMATTR_SHIFT;
/// MemAttr for Normal memory, Outer Write-Back Cacheable (`\[3:2\] = 0b11`) and Inner
/// Write-Back Cacheable (`\[1:0\] = 0b11`).
const MEMATTR_NORMAL_WRITE_BACK: u64 = 0b1111;
/// MemAttr for Device-nGnRE memory (`\[3:2\] = 0b00` Device, `\[1:0\] = 0b01` nGnRE).
const MEMATTR_DEVICE_NGNRE: u64 = 0b0001;
/// MemAttr\[3:2\] == 0b00 means a Device memory type.
const MEMATTR_OUTER_MASK: u64 = 0b1100;

/// S2AP\[0\], bit 6: data reads allowed.
const S2AP_READ: u64 = 1 << 6;
/// S2AP\[1\], bit 7: data writes allowed.
const S2AP_WRITE: u64 = 1 << 7;

/// SH\[1:0\], bits\[9:8\] = 0b11: Inner Shareable. Used for Normal memory; Device memory is
/// always treated as Outer Shareable, so its SH field is left 0b00.
const SH_INNER_SHAREABLE: u64 = 0b11 << 8;

/// AF, bit 10: Access flag set, so the first access does not fault.
const ACCESS_FLAG: u64 = 1 << 10;

/// XN\[1:0\], bits\[54:53\].
const XN_SHIFT: u32 = 53;
/// Mask of XN.
const XN_MASK: u64 = 0b11 << XN_SHIFT;
/// XN = 0b10: execute-never at EL1 and EL0 (with or without FEAT_XNX: without it, bit 54
/// alone is XN and bit 53 is RES0).
const XN_NEVER: u64 = 0b10 << XN_SHIFT;

/// Lowest output address bit of a block or page at `level` (30, 21 or 12).
const fn output_shift(level: u8) -> u32 {
    12 + 9 * (LAST_LEVEL - level) as u32
}

impl Aarch64Stage2 {
    /// The attribute bits (everything but the type and address fields) for `attrs`.
    ///
    /// `read: false, write: true` encodes as S2AP = 0b10, write-only, which stage 2
    /// permits; the hypercall layer decides whether to offer it. Executable Device memory
    /// is encoded as asked, but callers should not ask for it (speculative instruction
    /// fetches may touch the device).
    const fn leaf_attributes(attrs: Attributes) -> u64 {
        let memory = match attrs.kind {
            MemoryKind::Normal => (MEMATTR_NORMAL_WRITE_BACK << MEMATTR_SHIFT) | SH_INNER_SHAREABLE,
            MemoryKind::Device => MEMATTR_DEVICE_NGNRE << MEMATTR_SHIFT,
        };
        let read = if attrs.read { S2AP_READ } else { 0 };
        let write = if attrs.write { S2AP_WRITE } else { 0 };
        let execute = if attrs.execute { 0 } else { XN_NEVER };
        memory | read | write | ACCESS_FLAG | execute
    }

    /// Reads the attribute fields back. MemAttr\[3:2\] == 0b00 is Device, anything else
    /// Normal; only XN == 0b00 (executable at EL1 and EL0) counts as executable.
    const fn decode_attributes(descriptor: u64) -> Attributes {
        let memattr = (descriptor & MEMATTR_MASK) >> MEMATTR_SHIFT;
        Attributes {
            read: descriptor & S2AP_READ != 0,
            write: descriptor & S2AP_WRITE != 0,
            execute: descriptor & XN_MASK == 0,
            kind: if memattr & MEMATTR_OUTER_MASK == 0 {
                MemoryKind::Device
            } else {
                MemoryKind::Normal
            },
        }
    }

    /// A level-1 or level-2 block descriptor mapping `output` (aligned to the block size of
    /// its level: 1 GiB or 2 MiB) with `attrs`. [`crate::mem::stage2::Stage2`] never
    /// creates blocks; this exists for completeness and tests.
    pub const fn block(output: PhysAddr, attrs: Attributes) -> u64 {
        VALID | (output.raw() & ADDRESS_MASK) | Self::leaf_attributes(attrs)
    }
}

impl DescriptorFormat for Aarch64Stage2 {
    /// bits\[1:0\] = 0b00: faults. All other bits are ignored by hardware; zero is used.
    const INVALID: u64 = 0;

    fn table(next: PhysAddr) -> u64 {
        debug_assert!(
            next.raw() & !ADDRESS_MASK == 0,
            "table address out of range"
        );
        VALID | TABLE_OR_PAGE | (next.raw() & ADDRESS_MASK)
    }

    fn page(frame: PhysAddr, attrs: Attributes) -> u64 {
        debug_assert!(
            frame.raw() & !ADDRESS_MASK == 0,
            "output address out of range"
        );
        VALID | TABLE_OR_PAGE | (frame.raw() & ADDRESS_MASK) | Self::leaf_attributes(attrs)
    }

    fn decode(descriptor: u64, level: u8) -> Entry {
        let kind = descriptor & TYPE_MASK;
        let address = descriptor & ADDRESS_MASK;
        match (kind, level) {
            (0b11, LAST_LEVEL) => {
                Entry::Page(PhysAddr::new(address), Self::decode_attributes(descriptor))
            }
            (0b11, 0..LAST_LEVEL) => Entry::Table(PhysAddr::new(address)),
            // With a 4 KiB granule and no FEAT_LPA2, blocks exist at levels 1 and 2 only.
            (0b01, 1 | 2) => {
                let output = address & !((1 << output_shift(level)) - 1);
                Entry::Block(PhysAddr::new(output), Self::decode_attributes(descriptor))
            }
            // 0bx0 is invalid; 0b01 at level 0 or 3 is reserved and faults like invalid.
            _ => Entry::Invalid,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use exo_abi::Rights;

    fn attrs(rights: Rights, kind: MemoryKind) -> Attributes {
        Attributes::from_rights(rights, kind)
    }

    #[test]
    fn read_write_normal_page_matches_the_spec_bit_by_bit() {
        // bits[1:0]   = 0b11 page                        0x0000_0000_0000_0003
        // MemAttr     = 0b1111 << 2 (Normal, WB/WB)      0x0000_0000_0000_003C
        // S2AP        = 0b11 << 6 (read/write)           0x0000_0000_0000_00C0
        // SH          = 0b11 << 8 (Inner Shareable)      0x0000_0000_0000_0300
        // AF          = 1 << 10                          0x0000_0000_0000_0400
        // OA[47:12]   = 0x4123_4000                      0x0000_0000_4123_4000
        // XN          = 0b10 << 53 (never, EL1 and EL0)  0x0040_0000_0000_0000
        const EXPECTED: u64 = 0x0040_0000_4123_47FF;
        let descriptor = Aarch64Stage2::page(
            PhysAddr::new(0x4123_4000),
            attrs(Rights::READ_WRITE, MemoryKind::Normal),
        );
        assert_eq!(descriptor, EXPECTED, "{descriptor:#018x}");
    }

    #[test]
    fn read_execute_normal_page_matches_the_spec() {
        // 0b11 | MemAttr 0x3C | S2AP 0b01 0x40 | SH 0x300 | AF 0x400 = 0x77F, XN = 0b00.
        let descriptor = Aarch64Stage2::page(
            PhysAddr::new(0x4000_0000),
            attrs(Rights::READ | Rights::EXECUTE, MemoryKind::Normal),
        );
        assert_eq!(descriptor, 0x0000_0000_4000_077F, "{descriptor:#018x}");
    }

    #[test]
    fn device_page_matches_the_spec() {
        // 0b11 | MemAttr 0b0001 << 2 = 0x4 | S2AP 0xC0 | SH 0b00 | AF 0x400 = 0x4C7, XN 0b10.
        let descriptor = Aarch64Stage2::page(
            PhysAddr::new(0x0900_0000),
            attrs(Rights::READ_WRITE, MemoryKind::Device),
        );
        assert_eq!(descriptor, 0x0040_0000_0900_04C7, "{descriptor:#018x}");
    }

    #[test]
    fn write_only_and_no_access_use_the_s2ap_encodings() {
        let page = |bits| Aarch64Stage2::page(PhysAddr::new(0), attrs(bits, MemoryKind::Normal));
        assert_eq!((page(Rights::WRITE) >> 6) & 0b11, 0b10);
        assert_eq!((page(Rights::READ) >> 6) & 0b11, 0b01);
        assert_eq!((page(Rights::empty()) >> 6) & 0b11, 0b00);
    }

    #[test]
    fn table_descriptor_is_address_and_type_only() {
        assert_eq!(
            Aarch64Stage2::table(PhysAddr::new(0x4000_1000)),
            0x0000_0000_4000_1003
        );
        assert_eq!(
            Aarch64Stage2::table(PhysAddr::new(0xFFFF_FFFF_F000)),
            0x0000_FFFF_FFFF_F003
        );
    }

    #[test]
    fn block_descriptor_has_type_0b01() {
        let descriptor = Aarch64Stage2::block(
            PhysAddr::new(0x4020_0000),
            attrs(Rights::READ_WRITE, MemoryKind::Normal),
        );
        assert_eq!(descriptor, 0x0040_0000_4020_07FD, "{descriptor:#018x}");
        assert_eq!(
            Aarch64Stage2::decode(descriptor, 2),
            Entry::Block(
                PhysAddr::new(0x4020_0000),
                attrs(Rights::READ_WRITE, MemoryKind::Normal)
            )
        );
        // The same bits at level 0 or 3 are reserved: treated as faulting.
        assert_eq!(Aarch64Stage2::decode(descriptor, 0), Entry::Invalid);
        assert_eq!(Aarch64Stage2::decode(descriptor, 3), Entry::Invalid);
    }

    #[test]
    fn every_rights_and_kind_combination_round_trips() {
        for rights in (0..8).filter_map(Rights::from_bits) {
            for kind in [MemoryKind::Normal, MemoryKind::Device] {
                let a = attrs(rights, kind);
                let frame = PhysAddr::new(0x8_7654_3000);
                assert_eq!(
                    Aarch64Stage2::decode(Aarch64Stage2::page(frame, a), 3),
                    Entry::Page(frame, a)
                );
                assert_eq!(a.rights(), rights);
            }
        }
    }

    #[test]
    fn table_round_trips_at_levels_0_to_2_and_is_a_page_at_level_3() {
        let next = PhysAddr::new(0x1234_5000);
        for level in 0..3 {
            assert_eq!(
                Aarch64Stage2::decode(Aarch64Stage2::table(next), level),
                Entry::Table(next)
            );
        }
        assert!(matches!(
            Aarch64Stage2::decode(Aarch64Stage2::table(next), 3),
            Entry::Page(..)
        ));
    }

    #[test]
    fn invalid_decodes_as_invalid_whatever_the_other_bits() {
        for level in 0..=3 {
            assert_eq!(
                Aarch64Stage2::decode(Aarch64Stage2::INVALID, level),
                Entry::Invalid
            );
            assert_eq!(Aarch64Stage2::decode(!VALID, level), Entry::Invalid);
            assert_eq!(Aarch64Stage2::decode(0b10, level), Entry::Invalid);
        }
    }

    #[test]
    fn decode_ignores_software_and_upper_bits() {
        const SOFTWARE: u64 = 0b1111 << 55;
        let a = attrs(Rights::READ, MemoryKind::Device);
        let frame = PhysAddr::new(0x4000_5000);
        let page = Aarch64Stage2::page(frame, a);
        assert_eq!(
            Aarch64Stage2::decode(page | SOFTWARE, 3),
            Entry::Page(frame, a)
        );
        let table = Aarch64Stage2::table(frame);
        assert_eq!(
            Aarch64Stage2::decode(table | SOFTWARE | (0b11111 << 59), 1),
            Entry::Table(frame)
        );
    }

    #[test]
    fn block_decode_drops_address_bits_below_the_block_size() {
        let a = attrs(Rights::READ, MemoryKind::Normal);
        let descriptor = Aarch64Stage2::block(PhysAddr::new(0x4000_0000), a) | (1 << 12);
        assert_eq!(
            Aarch64Stage2::decode(descriptor, 1),
            Entry::Block(PhysAddr::new(0x4000_0000), a)
        );
    }
}
