//! The GIC distributor as a secure binding checked in software, for partitions that drive
//! the GIC themselves (Linux): the distributor frame is left unmapped in their stage 2,
//! every access traps, and this module decides what each one may do. It is the portable
//! half, with no hardware access: the arch layer decodes the data abort into an
//! [`Access`], and the real registers are reached through [`DistributorRegisters`].
//!
//! The rule, after Jailhouse's `irqchip.c` and `gic-v2.c`/`gic-v3.c` (not emulation: the
//! partition's own interrupts are configured in the real distributor, as a library OS's
//! are through `EXO_IRQ_*`):
//!
//! | Register (GICv3 2.9, "The GIC Distributor register map"; GICv2 4.1.2) | Interrupts the partition owns | Any other interrupt |
//! |---|---|---|
//! | `GICD_ISENABLER`/`ICENABLER`, `ISPENDR`/`ICPENDR`, `ISACTIVER`/`ICACTIVER` (1 bit each) | read; write-1 bits reach the register | read as zero, write ignored |
//! | `GICD_IPRIORITYR` (8 bits, byte-accessible), `GICD_ICFGR` (2 bits) | read; read-modify-write of its fields only | read as zero, write ignored |
//! | `GICD_IGROUPR` (1 bit) | read; write ignored (the group is how the interrupt reaches the kernel at EL2) | read as zero |
//! | `GICD_ITARGETSR` (GICv2, 8 bits) | reads its vCPU 0 (`0x01`), write ignored | SGIs and PPIs read the vCPU's own mask; SPIs zero |
//! | `GICD_IROUTER` (GICv3, 64 bits) | reads affinity 0.0.0.0, its vCPU 0; write ignored | zero |
//!
//! Physical routing stays the kernel's (every SPI goes to the core that injects it as a
//! virtual interrupt); the partition sees routing in terms of its own vCPUs. SGIs and PPIs
//! (INTIDs 0-31) are banked per core and never a partition's: the virtual timer, its one
//! PPI, reaches it through the list registers as it reaches a library OS.
//!
//! The partition's view of the rest: `GICD_CTLR` reads back the group enables it wrote
//! (and on GICv3 affinity routing enabled, `ARE`), nothing reaches the real one;
//! `GICD_TYPER` shows the real number of interrupt lines (and on GICv3 `IDbits`) and its
//! own vCPU count, no LPIs, no extended SPIs, no security extension; `GICD_IIDR` and the
//! identification registers read as the hardware's. A GICv2 `GICD_SGIR` write becomes an
//! [`Outcome::Sgi`] among its own vCPUs. Everything else reads as zero and ignores writes,
//! and so does any access of a width or alignment the register does not allow.
//!
//! A read-modify-write is two accesses to the real register: the caller must keep every
//! other distributor access out between them (exo serves traps under one lock).

/// The architecture version of the distributor.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum GicVersion {
    /// GICv2 (GIC-400): a 4 KiB frame, `GICD_ITARGETSR` and `GICD_SGIR`.
    V2,
    /// GICv3 with affinity routing: a 64 KiB frame, `GICD_IROUTER`.
    V3,
}

impl GicVersion {
    /// Bytes of the distributor frame.
    pub fn frame_size(self) -> u32 {
        match self {
            GicVersion::V2 => 0x1000,
            GicVersion::V3 => 0x1_0000,
        }
    }
}

/// The size of a trapped access (`ESR_EL2.ISS.SAS`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Width {
    /// 8 bits.
    Byte,
    /// 16 bits.
    Half,
    /// 32 bits.
    Word,
    /// 64 bits.
    Double,
}

impl Width {
    /// Bytes accessed.
    pub fn bytes(self) -> u32 {
        match self {
            Width::Byte => 1,
            Width::Half => 2,
            Width::Word => 4,
            Width::Double => 8,
        }
    }

    /// The bits of a value of this width.
    fn mask(self) -> u64 {
        match self {
            Width::Double => u64::MAX,
            other => (1u64 << (8 * other.bytes())) - 1,
        }
    }
}

/// A trapped access to the distributor frame, as the arch layer decoded it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Access {
    /// Offset from the distributor's base.
    pub offset: u32,
    /// Its size.
    pub width: Width,
    /// The value written, or `None` for a read.
    pub write: Option<u64>,
}

/// The real distributor's 32-bit registers, by offset from its base (word aligned). The
/// arch layer implements it over MMIO; host tests over a model of the GIC.
pub trait DistributorRegisters {
    /// Reads the register at `offset`.
    fn read32(&mut self, offset: u32) -> u32;
    /// Writes `value` to the register at `offset`.
    fn write32(&mut self, offset: u32, value: u32);
}

/// What became of an access.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Outcome {
    /// A read: the value for the partition's register.
    Read(u64),
    /// A write reached the real register at `offset` (word aligned), restricted to the
    /// partition's own interrupts' bits: `mask` of them.
    Written {
        /// The register.
        offset: u32,
        /// Which of its bits the partition's write could change.
        mask: u32,
    },
    /// A write changed only the partition's own view (`GICD_CTLR`).
    ViewChanged,
    /// A write was ignored.
    Ignored,
    /// A GICv2 `GICD_SGIR` write: SGI `id` to these of the partition's vCPUs.
    Sgi {
        /// The SGI's INTID (0-15).
        id: u8,
        /// Whom it goes to.
        targets: SgiTargets,
    },
}

/// The targets of a GICv2 SGI (`GICD_SGIR.TargetListFilter`), in vCPUs of the partition.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SgiTargets {
    /// These vCPUs (bit n = vCPU n), only ones the partition has.
    List(u8),
    /// Every vCPU of the partition but the sender.
    Others,
    /// The sender only.
    Sender,
}

/// Register offsets (GICv3 Table 12-25; GICv2 Table 4-1).
mod offset {
    pub const CTLR: u32 = 0x000;
    pub const TYPER: u32 = 0x004;
    pub const IIDR: u32 = 0x008;
    pub const IGROUPR: u32 = 0x080;
    pub const ISENABLER: u32 = 0x100;
    pub const ICACTIVER_END: u32 = 0x400;
    pub const IPRIORITYR: u32 = 0x400;
    pub const ITARGETSR: u32 = 0x800;
    pub const ICFGR: u32 = 0xC00;
    pub const ICFGR_END: u32 = 0xD00;
    pub const SGIR: u32 = 0xF00;
    pub const IROUTER: u32 = 0x6000;
    pub const IROUTER_END: u32 = 0x8000;
    /// `GICD_PIDR4`..`GICD_CIDR3`, from the frame's end.
    pub const IDENTIFICATION_FROM_END: u32 = 0x30;
}

/// `GICD_CTLR` bits the partition may set: the group enables (GICv2 `EnableGrp0`/`1`;
/// GICv3 `EnableGrp1NS`/`EnableGrp1A` as the non-secure view sees them).
const CTLR_GROUP_ENABLES: u32 = 0b11;
/// `GICD_CTLR.ARE_NS`: affinity routing, always on for exo's GICv3.
const CTLR_ARE: u32 = 1 << 4;
/// `GICD_TYPER.ITLinesNumber`.
const TYPER_LINES: u32 = 0x1f;
/// `GICD_TYPER.IDbits` (GICv3).
const TYPER_IDBITS: u32 = 0x1f << 19;
/// `GICD_TYPER.CPUNumber`'s shift.
const TYPER_CPUS_SHIFT: u32 = 5;

/// What one partition sees of the distributor, and may change through it. Which
/// interrupts it owns is not kept here: every access asks the kernel's interrupt table
/// (the one record of ownership), so an interrupt released is no longer reachable.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DistributorView {
    version: GicVersion,
    vcpus: u8,
    /// The group enables it wrote (two bits: a `u8` keeps `Partition` as small as it was).
    ctlr: u8,
}

/// Which INTIDs the partition owns, asked per access.
pub type Owns<'o> = &'o dyn Fn(u32) -> bool;

/// How a per-interrupt register lays out its interrupts.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Field {
    /// Set/clear pairs: write-1 bits act, zeros do nothing, so no read is needed.
    Poke,
    /// `GICD_IGROUPR`: readable, not writable by partitions.
    Group,
    /// Read-modify-write of the partition's fields (`IPRIORITYR`, `ICFGR`).
    Modify,
}

impl DistributorView {
    /// The view of a partition with `vcpus` vCPUs (1 to 8), its group enables off.
    pub fn new(version: GicVersion, vcpus: u8) -> Self {
        Self {
            version,
            vcpus: vcpus.clamp(1, 8),
            ctlr: 0,
        }
    }

    /// Serves one trapped access, reaching the real registers through `gicd` only for the
    /// bits of the SPIs the partition owns (`owns`; SGIs and PPIs never count).
    pub fn access(
        &mut self,
        access: Access,
        owns: Owns<'_>,
        gicd: &mut dyn DistributorRegisters,
    ) -> Outcome {
        let Access {
            offset,
            width,
            write,
        } = access;
        let aligned = offset.is_multiple_of(width.bytes());
        if !aligned || offset >= self.version.frame_size() {
            return ignore(write).into();
        }
        let word = offset & !3;
        match (word, width) {
            (offset::CTLR, Width::Word) => self.ctlr(write),
            (offset::TYPER, Width::Word) => ignore(write).or_read(|| self.typer(gicd)),
            (offset::IIDR, Width::Word) => ignore(write).or_read(|| gicd.read32(word).into()),
            (offset::IGROUPR..offset::ISENABLER, Width::Word) => {
                let bank = Bank::new(offset::IGROUPR, 1, Field::Group);
                bank.access(owns, word, write, gicd)
            }
            (offset::ISENABLER..offset::ICACTIVER_END, Width::Word) => {
                Bank::new(word & !0x7f, 1, Field::Poke).access(owns, word, write, gicd)
            }
            (offset::IPRIORITYR..offset::ITARGETSR, Width::Byte | Width::Word) => {
                self.bytes(owns, offset::IPRIORITYR, access, gicd)
            }
            (offset::ITARGETSR..offset::ICFGR, Width::Byte | Width::Word)
                if self.version == GicVersion::V2 =>
            {
                self.targets(owns, access)
            }
            (offset::ICFGR..offset::ICFGR_END, Width::Word) => {
                let bank = Bank::new(offset::ICFGR, 2, Field::Modify);
                bank.access(owns, word, write, gicd)
            }
            (offset::SGIR, Width::Word) if self.version == GicVersion::V2 => self.sgir(write),
            (offset::IROUTER..offset::IROUTER_END, Width::Word | Width::Double)
                if self.version == GicVersion::V3 =>
            {
                // Its SPIs route to its vCPU 0 (affinity 0.0.0.0), and so reads every other
                // INTID: zero either way, and the kernel keeps the physical routing.
                ignore(write).or_read(|| 0)
            }
            (_, Width::Word) if self.is_identification(word) => {
                ignore(write).or_read(|| gicd.read32(word).into())
            }
            _ => ignore(write).into(),
        }
    }

    /// `GICD_CTLR`: the partition's own group enables (and `ARE` on GICv3), never the
    /// real register; `RWP` reads 0, as after a completed write.
    fn ctlr(&mut self, write: Option<u64>) -> Outcome {
        if let Some(value) = write {
            self.ctlr = (value as u32 & CTLR_GROUP_ENABLES) as u8;
            return Outcome::ViewChanged;
        }
        let are = match self.version {
            GicVersion::V2 => 0,
            GicVersion::V3 => CTLR_ARE,
        };
        Outcome::Read(u64::from(u32::from(self.ctlr) | are))
    }

    /// `GICD_TYPER`: the real interrupt lines (and GICv3 `IDbits`), its vCPUs, nothing else.
    fn typer(&self, gicd: &mut dyn DistributorRegisters) -> u64 {
        let real = gicd.read32(offset::TYPER);
        let kept = match self.version {
            GicVersion::V2 => TYPER_LINES,
            GicVersion::V3 => TYPER_LINES | TYPER_IDBITS,
        };
        u64::from((real & kept) | (u32::from(self.vcpus - 1) << TYPER_CPUS_SHIFT))
    }

    /// The identification registers at the end of the frame (`GICD_PIDR4`..`GICD_CIDR3`).
    fn is_identification(&self, word: u32) -> bool {
        word >= self.version.frame_size() - offset::IDENTIFICATION_FROM_END
    }

    /// The mask of the partition's fields in the register at `word` of a per-interrupt
    /// array starting at `base` with `bits` bits per interrupt.
    fn owned_mask(owns: Owns<'_>, base: u32, word: u32, bits: u32) -> u32 {
        let per_word = 32 / bits;
        let first = (word - base) / 4 * per_word;
        let field = (1 << bits) - 1;
        (0..per_word)
            .filter(|i| first + i >= 32 && owns(first + i))
            .fold(0, |mask, i| mask | field << (i * bits))
    }

    /// `GICD_IPRIORITYR`, byte or word: the partition's bytes only.
    fn bytes(
        &self,
        owns: Owns<'_>,
        base: u32,
        access: Access,
        gicd: &mut dyn DistributorRegisters,
    ) -> Outcome {
        let word = access.offset & !3;
        let shift = 8 * (access.offset & 3);
        let accessed = (access.width.mask() as u32) << shift;
        let mask = Self::owned_mask(owns, base, word, 8) & accessed;
        match access.write {
            None if mask == 0 => Outcome::Read(0),
            None => Outcome::Read(u64::from((gicd.read32(word) & mask) >> shift)),
            Some(_) if mask == 0 => Outcome::Ignored,
            Some(value) => apply(gicd, word, mask, (value as u32) << shift, Field::Modify),
        }
    }

    /// `GICD_ITARGETSR` (GICv2): in terms of the partition's vCPUs. SGIs' and PPIs'
    /// bytes (read-only, banked) name the reading vCPU, vCPU 0's mask; its own SPIs go to
    /// its vCPU 0; other SPIs read as zero. Writes are ignored: routing is the kernel's.
    fn targets(&self, owns: Owns<'_>, access: Access) -> Outcome {
        if access.write.is_some() {
            return Outcome::Ignored;
        }
        let first = access.offset - offset::ITARGETSR;
        let value = (0..access.width.bytes())
            .filter(|byte| first + byte < 32 || owns(first + byte))
            .fold(0u64, |value, byte| value | 1 << (8 * byte));
        Outcome::Read(value)
    }

    /// `GICD_SGIR` (GICv2): an SGI among the partition's vCPUs.
    fn sgir(&self, write: Option<u64>) -> Outcome {
        let Some(value) = write else {
            return Outcome::Read(0); // write-only
        };
        let id = (value & 0xf) as u8;
        let targets = match (value >> 24) & 0b11 {
            0 => SgiTargets::List((value >> 16) as u8 & vcpu_mask(self.vcpus)),
            1 => SgiTargets::Others,
            2 => SgiTargets::Sender,
            _ => return Outcome::Ignored, // reserved filter
        };
        Outcome::Sgi { id, targets }
    }
}

/// A bank of 32-bit per-interrupt registers of 1- or 2-bit fields.
#[derive(Clone, Copy)]
struct Bank {
    /// Offset of its first register.
    base: u32,
    /// Bits per interrupt.
    bits: u32,
    /// How a write acts.
    field: Field,
}

impl Bank {
    fn new(base: u32, bits: u32, field: Field) -> Self {
        Self { base, bits, field }
    }

    /// An access to its register at `word`.
    fn access(
        self,
        owns: Owns<'_>,
        word: u32,
        write: Option<u64>,
        gicd: &mut dyn DistributorRegisters,
    ) -> Outcome {
        let mask = DistributorView::owned_mask(owns, self.base, word, self.bits);
        match write {
            None if mask == 0 => Outcome::Read(0),
            None => Outcome::Read(u64::from(gicd.read32(word) & mask)),
            Some(_) if mask == 0 || self.field == Field::Group => Outcome::Ignored,
            Some(value) => apply(gicd, word, mask, value as u32, self.field),
        }
    }
}

/// The vCPU bits of a partition with `vcpus` vCPUs.
fn vcpu_mask(vcpus: u8) -> u8 {
    ((1u16 << vcpus) - 1) as u8
}

/// Writes the partition's bits of `value` (`mask`) to the register at `word`: straight for
/// set/clear registers, read-modify-write for fields.
fn apply(
    gicd: &mut dyn DistributorRegisters,
    word: u32,
    mask: u32,
    value: u32,
    field: Field,
) -> Outcome {
    let new = match field {
        Field::Poke => value & mask,
        Field::Modify | Field::Group => (gicd.read32(word) & !mask) | (value & mask),
    };
    gicd.write32(word, new);
    Outcome::Written { offset: word, mask }
}

/// A write is ignored; a read is answered by [`IgnoredWrite::or_read`].
fn ignore(write: Option<u64>) -> IgnoredWrite {
    IgnoredWrite(write.is_some())
}

/// Whether the access was a write, to be ignored.
struct IgnoredWrite(bool);

impl IgnoredWrite {
    /// `Ignored` for a write, else the value `read` gives.
    fn or_read(self, read: impl FnOnce() -> u64) -> Outcome {
        if self.0 {
            Outcome::Ignored
        } else {
            Outcome::Read(read())
        }
    }
}

impl From<IgnoredWrite> for Outcome {
    /// A write ignored, a read as zero.
    fn from(ignored: IgnoredWrite) -> Self {
        ignored.or_read(|| 0)
    }
}

#[cfg(test)]
mod tests;
