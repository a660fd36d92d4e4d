//! What the kernel does differently for a partition running an unmodified Linux kernel
//! (`PartitionFlags::LINUX`, docs/linux.md), the portable decisions: which trapped system
//! registers it reads as zero instead of stopping the partition, what its SGIs are, and
//! what it sees of its GICv3 redistributor. Its distributor accesses go through
//! [`crate::gicd_filter`].

use crate::gicd_filter::Width;

/// What to do with a trapped `MSR`/`MRS` of a Linux partition.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SystemRegisterAction {
    /// A debug or performance-monitor register: shared by every partition on the core and
    /// trapped (`MDCR_EL2`), so the partition sees none: reads as zero, writes ignored.
    /// Linux touches them at boot (`MDSCR_EL1`, `OSLAR_EL1`, `PMUSERENR_EL0`).
    ReadAsZero,
    /// `ICC_SGI1R_EL1` (or `ICC_ASGI1R_EL1`, `ICC_SGI0R_EL1`): SGI `intid`, which reaches
    /// the partition's own vCPU 0 when `to_self`.
    Sgi {
        /// The SGI (0-15).
        intid: u8,
        /// It targets vCPU 0, the partition's only one.
        to_self: bool,
    },
    /// Not one the kernel serves: the partition is stopped as for any unexpected trap.
    Unhandled,
}

/// A system register's encoding (Arm ARM C5.3).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Encoding {
    /// Op0.
    pub op0: u8,
    /// Op1.
    pub op1: u8,
    /// CRn.
    pub crn: u8,
    /// CRm.
    pub crm: u8,
    /// Op2.
    pub op2: u8,
}

/// Decides a trapped system-register access of a Linux partition; `value` is what an
/// `MSR` writes (ignored for an `MRS`).
pub fn system_register(encoding: Encoding, read: bool, value: u64) -> SystemRegisterAction {
    let Encoding {
        op0,
        op1,
        crn,
        crm,
        op2,
    } = encoding;
    // Op0 = 2: the debug registers (MDSCR_EL1, OSLAR_EL1, OSDLR_EL1, DBGB*, DBGW*, ...),
    // trapped by MDCR_EL2.TDA, TDOSA and TDRA.
    let debug = op0 == 2;
    // The performance monitors (Arm ARM D13): PMCR_EL0.. in CRn 9, CRm 12-14; the event
    // counters and types in CRn 14, CRm 8-15 (MDCR_EL2.TPM, TPMCR).
    let pmu = op0 == 3
        && ((crn == 9 && (12..=14).contains(&crm) && (op1 == 0 || op1 == 3))
            || (crn == 14 && crm >= 8 && op1 == 3));
    if debug || pmu {
        return SystemRegisterAction::ReadAsZero;
    }
    // ICC_SGI1R_EL1 (3,0,12,11,5), ICC_ASGI1R_EL1 (op2 6), ICC_SGI0R_EL1 (op2 7): writes
    // trap with HCR_EL2.IMO/FMO set (GICv3 12.2.x).
    if (op0, op1, crn, crm) == (3, 0, 12, 11) && (5..=7).contains(&op2) && !read {
        return sgi(value);
    }
    SystemRegisterAction::Unhandled
}

/// An SGI register's value (GICv3 12.2.x, `ICC_SGI1R_EL1`): INTID \[27:24\], IRM \[40\],
/// Aff3 \[55:48\], Aff2 \[39:32\], Aff1 \[23:16\], TargetList \[15:0\]. The partition's one
/// vCPU has affinity 0.0.0.0.
fn sgi(value: u64) -> SystemRegisterAction {
    let intid = ((value >> 24) & 0xf) as u8;
    let every_other = value & (1 << 40) != 0;
    let affinity = (value >> 16) & 0xff | (value >> 32) & 0xff | (value >> 48) & 0xff;
    let to_self = !every_other && affinity == 0 && value & 1 != 0;
    SystemRegisterAction::Sgi { intid, to_self }
}

/// Bytes of one redistributor: its `RD_base` and `SGI_base` frames (GICv3 12.10).
pub const REDISTRIBUTOR_SIZE: u64 = 0x2_0000;

/// `GICR_TYPER.Last`: the last redistributor of the region.
const TYPER_LAST: u64 = 1 << 4;
/// `GICR_PIDR2`: ArchRev 3 (GICv3) in \[7:4\], and the JEDEC bits Arm's GICs show.
const PIDR2_GICV3: u64 = 0x3B;

/// What a Linux partition reads from its GICv3 redistributor (vCPU 0's, the only one), at
/// `offset` in the 128 KiB: its identity, and nothing else. `GICR_TYPER` names affinity
/// 0.0.0.0, processor 0, last, no LPIs; `GICR_PIDR2` says GICv3 (Linux checks both when it
/// looks for its redistributor); every other register reads as zero (so `GICR_WAKER`
/// reports it awake and `GICR_CTLR` no write pending) and ignores writes: SGIs and PPIs
/// are the kernel's, and its virtual timer and SGIs reach it through the list registers.
pub fn redistributor_read(offset: u64, width: Width) -> u64 {
    let word = |value: u64, at: u64| match (width, offset - at) {
        (Width::Double, 0) => value,
        (Width::Word, 0) => value & 0xffff_ffff,
        (Width::Word, 4) => value >> 32,
        _ => 0,
    };
    match offset & !7 {
        0x0008 => word(TYPER_LAST, 0x0008),
        0xFFE8 => word(PIDR2_GICV3, 0xFFE8),
        _ => 0,
    }
}

#[cfg(test)]
mod tests;
