//! A host-only fake architecture for tests, deliberately unlike AArch64.
//!
//! [`FakeFormat`] encodes stage-2 descriptors with every field somewhere else than the real
//! format puts it: the kind of descriptor in the top bits, the address stored as a frame
//! number in the low bits, the rights in the middle, and a non-zero invalid value. Portable
//! code that pokes AArch64 descriptor bits itself (or assumes invalid is zero) produces
//! garbage here and the tests catch it. Decoding anything that is neither
//! [`FakeFormat::INVALID`] nor a well-formed fake descriptor panics, which fails the test.

use exo_abi::info::MemoryKind;
use exo_abi::{PAGE_SIZE, PhysAddr};

use crate::mem::stage2::{Attributes, DescriptorFormat, Entry, LAST_LEVEL};

/// The fake counter's frequency: QEMU's 62.5 MHz, so that a tick is not a microsecond and
/// a deadline left in microseconds (or converted the wrong way) is off by 62.5 times.
pub const TIMER_HZ: u64 = 62_500_000;

/// `us` microseconds in ticks of the fake counter.
pub const fn ticks(us: u64) -> u64 {
    us * TIMER_HZ / 1_000_000
}

/// The fake stage-2 descriptor format.
pub struct FakeFormat;

/// Bit 63: the descriptor is valid.
const VALID: u64 = 1 << 63;
/// Bit 62: points to a next-level table.
const TABLE: u64 = 1 << 62;
/// Bit 61: maps memory (page at level 3, block above).
const LEAF: u64 = 1 << 61;
/// Bits [39:0]: the frame number (address / 4 KiB), not the address.
const FRAME_MASK: u64 = (1 << 40) - 1;
/// Bit 40: readable.
const READ: u64 = 1 << 40;
/// Bit 41: writable.
const WRITE: u64 = 1 << 41;
/// Bit 42: executable.
const EXECUTE: u64 = 1 << 42;
/// Bit 43: Device memory.
const DEVICE: u64 = 1 << 43;
/// Every bit a well-formed valid descriptor may use.
const KNOWN: u64 = VALID | TABLE | LEAF | FRAME_MASK | READ | WRITE | EXECUTE | DEVICE;

impl FakeFormat {
    /// The frame-number field for `address`.
    fn frame(address: PhysAddr) -> u64 {
        assert!(
            address.is_page_aligned(),
            "fake: unaligned address {address:?}"
        );
        let number = address.raw() / PAGE_SIZE;
        assert!(number <= FRAME_MASK, "fake: address out of range");
        number
    }

    /// The attribute bits for `attrs`.
    fn attribute_bits(attrs: Attributes) -> u64 {
        (if attrs.read { READ } else { 0 })
            | (if attrs.write { WRITE } else { 0 })
            | (if attrs.execute { EXECUTE } else { 0 })
            | match attrs.kind {
                MemoryKind::Normal => 0,
                MemoryKind::Device => DEVICE,
            }
    }

    /// A block descriptor (levels 1 and 2) mapping `output` with `attrs`.
    pub fn block(output: PhysAddr, attrs: Attributes) -> u64 {
        VALID | LEAF | Self::frame(output) | Self::attribute_bits(attrs)
    }
}

impl FakeFormat {
    /// The frame a descriptor maps if it is a valid leaf (page or block), for recording
    /// fakes that watch what becomes mapped.
    pub fn leaf_target(descriptor: u64) -> Option<PhysAddr> {
        let leaf = descriptor & (VALID | TABLE | LEAF) == VALID | LEAF;
        (leaf && descriptor & !KNOWN == 0)
            .then(|| PhysAddr::new((descriptor & FRAME_MASK) * PAGE_SIZE))
    }
}

impl DescriptorFormat for FakeFormat {
    /// Deliberately not zero.
    const INVALID: u64 = 0x0BAD_0000_0000_0BAD;

    fn table(next: PhysAddr) -> u64 {
        VALID | TABLE | Self::frame(next)
    }

    fn page(frame: PhysAddr, attrs: Attributes) -> u64 {
        VALID | LEAF | Self::frame(frame) | Self::attribute_bits(attrs)
    }

    fn decode(descriptor: u64, level: u8) -> Entry {
        if descriptor == Self::INVALID {
            return Entry::Invalid;
        }
        assert!(
            descriptor & VALID != 0 && descriptor & !KNOWN == 0,
            "fake: malformed descriptor {descriptor:#018x} at level {level}"
        );
        let address = PhysAddr::new((descriptor & FRAME_MASK) * PAGE_SIZE);
        let attrs = Attributes {
            read: descriptor & READ != 0,
            write: descriptor & WRITE != 0,
            execute: descriptor & EXECUTE != 0,
            kind: if descriptor & DEVICE != 0 {
                MemoryKind::Device
            } else {
                MemoryKind::Normal
            },
        };
        match (descriptor & (TABLE | LEAF), level) {
            (TABLE, 0..LAST_LEVEL) => {
                assert!(descriptor & (READ | WRITE | EXECUTE | DEVICE) == 0);
                Entry::Table(address)
            }
            (LEAF, LAST_LEVEL) => Entry::Page(address, attrs),
            (LEAF, 1 | 2) => Entry::Block(address, attrs),
            _ => panic!("fake: descriptor {descriptor:#018x} not allowed at level {level}"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_and_differs_from_aarch64() {
        use crate::arch::aarch64::stage2_format::Aarch64Stage2;
        let frame = PhysAddr::new(0x4123_4000);
        for rights in (0..8).filter_map(exo_abi::Rights::from_bits) {
            for kind in [MemoryKind::Normal, MemoryKind::Device] {
                let attrs = Attributes::from_rights(rights, kind);
                let page = FakeFormat::page(frame, attrs);
                assert_eq!(FakeFormat::decode(page, 3), Entry::Page(frame, attrs));
                assert_ne!(page, Aarch64Stage2::page(frame, attrs));
            }
        }
        assert_eq!(
            FakeFormat::decode(FakeFormat::table(frame), 0),
            Entry::Table(frame)
        );
        assert_ne!(FakeFormat::INVALID, Aarch64Stage2::INVALID);
    }

    #[test]
    #[should_panic]
    fn zero_is_not_a_fake_descriptor() {
        let _ = FakeFormat::decode(0, 1);
    }
}
