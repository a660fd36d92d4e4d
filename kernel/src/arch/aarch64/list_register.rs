//! List-register encodings of the GIC virtual interface, both versions: what the kernel
//! writes to inject a virtual interrupt and reads to see what a partition did with it.
//! Portable so the encodings are unit-tested on the host.

use crate::irq::VirtualIrq;

/// What a list register holds.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Entry {
    /// Virtual INTID.
    pub intid: u32,
    /// Pending in the partition.
    pub pending: bool,
    /// Active (being handled) in the partition.
    pub active: bool,
    /// Backed by the physical interrupt of the same INTID.
    pub hardware: bool,
}

/// `ICH_LR<n>_EL2` (IHI 0069 12.4.6): State\[63:62\] (bit 62 pending, 63 active),
/// HW\[61\], Group\[60\] = 1, Priority\[55:48\], pINTID\[41:32\], vINTID\[31:0\].
pub fn encode_v3(irq: VirtualIrq) -> u64 {
    let id = u64::from(irq.intid);
    let physical = if irq.hardware {
        (1 << 61) | (id << 32)
    } else {
        0
    };
    (1 << 62) | (1 << 60) | physical | (u64::from(irq.priority) << 48) | id
}

/// Decodes an `ICH_LR<n>_EL2` value.
pub fn decode_v3(value: u64) -> Entry {
    Entry {
        intid: value as u32,
        pending: value & (1 << 62) != 0,
        active: value & (1 << 63) != 0,
        hardware: value & (1 << 61) != 0,
    }
}

/// `GICH_LR<n>` (IHI 0048 5.3.11): HW\[31\], Grp1\[30\] = 0 (Group 0: the partition's
/// GICV signals it as IRQ), State\[29:28\] (28 pending, 29 active), Priority\[27:23\]
/// (the top five bits), PhysicalID\[19:10\] with HW, VirtualID\[9:0\].
pub fn encode_v2(irq: VirtualIrq) -> u32 {
    let id = irq.intid & 0x3FF;
    let physical = if irq.hardware {
        (1 << 31) | (id << 10)
    } else {
        0
    };
    physical | (1 << 28) | (u32::from(irq.priority >> 3) << 23) | id
}

/// Decodes a `GICH_LR<n>` value.
pub fn decode_v2(value: u32) -> Entry {
    Entry {
        intid: value & 0x3FF,
        pending: value & (1 << 28) != 0,
        active: value & (1 << 29) != 0,
        hardware: value & (1 << 31) != 0,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn list_register_encodings_match_the_gic_specifications() {
        let hw = VirtualIrq {
            intid: 27,
            priority: 0xA0,
            hardware: true,
        };
        // Pending, HW, Group 1, priority 0xA0, pINTID 27, vINTID 27.
        assert_eq!(encode_v3(hw), 0x70A0_001B_0000_001B);
        assert_eq!(
            decode_v3(encode_v3(hw)),
            Entry {
                intid: 27,
                pending: true,
                active: false,
                hardware: true
            }
        );
        let virt = VirtualIrq {
            intid: 10,
            priority: 0xF8,
            hardware: false,
        };
        assert_eq!(encode_v3(virt), 0x50F8_0000_0000_000A);
        // Pending, Group 0, priority 0xA0 >> 3 = 0x14, PhysicalID 27, VirtualID 27.
        assert_eq!(encode_v2(hw), 0x9A00_6C1B);
        assert_eq!(decode_v2(encode_v2(hw)).intid, 27);
        assert!(decode_v2(encode_v2(hw)).hardware);
        // Pending, Group 0, priority 0xF8 >> 3 = 0x1F, VirtualID 10.
        assert_eq!(encode_v2(virt), 0x1F80_000A);
        assert!(!decode_v2(encode_v2(virt)).hardware);
    }
}
