//! Decoding of the Exception Syndrome Register (Arm ARM D24.2.40, `ESR_EL2`): exception class,
//! instruction length and the data/instruction abort syndrome fields the kernel acts on.
//! Pure bit manipulation, tested on the host.

use core::fmt;

/// Exception classes (ESR_ELx.EC, bits \[31:26\]) the kernel distinguishes.
pub mod class {
    /// Unknown reason.
    pub const UNKNOWN: u8 = 0x00;
    /// WFI or WFE trapped.
    pub const WFX: u8 = 0x01;
    /// SVE, Advanced SIMD or floating point access trapped.
    pub const FP: u8 = 0x07;
    /// Illegal execution state.
    pub const ILLEGAL_STATE: u8 = 0x0E;
    /// HVC from AArch64.
    pub const HVC64: u8 = 0x16;
    /// SMC from AArch64 (trapped by HCR_EL2.TSC).
    pub const SMC64: u8 = 0x17;
    /// MSR, MRS or system instruction trapped.
    pub const SYSREG: u8 = 0x18;
    /// Instruction abort from a lower exception level.
    pub const IABT_LOWER: u8 = 0x20;
    /// Instruction abort taken without a change in exception level.
    pub const IABT_SAME: u8 = 0x21;
    /// PC alignment fault.
    pub const PC_ALIGNMENT: u8 = 0x22;
    /// Data abort from a lower exception level.
    pub const DABT_LOWER: u8 = 0x24;
    /// Data abort taken without a change in exception level.
    pub const DABT_SAME: u8 = 0x25;
    /// SP alignment fault.
    pub const SP_ALIGNMENT: u8 = 0x26;
    /// SError.
    pub const SERROR: u8 = 0x2F;
    /// BRK instruction.
    pub const BRK64: u8 = 0x3C;
}

/// A load or store a data abort reports (its instruction syndrome).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct DataAccess {
    /// Bytes accessed: 1, 2, 4 or 8 (SAS).
    pub bytes: u8,
    /// A load that sign-extends (SSE).
    pub sign_extend: bool,
    /// The general register, 0-30, or 31 for `xzr`/`wzr` (SRT).
    pub register: u8,
    /// The register is 64-bit (SF), else 32-bit.
    pub sixty_four: bool,
    /// A store (WnR).
    pub write: bool,
}

/// A trapped system-register access: the register's encoding and the transfer.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SystemRegisterAccess {
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
    /// The general register, 0-30, or 31 for `xzr`.
    pub register: u8,
    /// `MRS` (a read), else `MSR`.
    pub read: bool,
}

/// A captured ESR_EL2 value.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct Esr(u64);

/// What an abort's fault status code says happened.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FaultStatus {
    /// Address size fault at the given level.
    AddressSize(u8),
    /// Translation fault (no valid descriptor) at the given level.
    Translation(u8),
    /// Access flag fault at the given level.
    AccessFlag(u8),
    /// Permission fault at the given level.
    Permission(u8),
    /// Alignment fault.
    Alignment,
    /// Synchronous external abort.
    External,
    /// Anything else (raw code).
    Other(u8),
}

impl Esr {
    /// Wraps a raw value.
    pub const fn new(raw: u64) -> Self {
        Self(raw)
    }

    /// The raw value.
    pub const fn raw(self) -> u64 {
        self.0
    }

    /// Exception class, bits \[31:26\].
    pub const fn class(self) -> u8 {
        ((self.0 >> 26) & 0x3F) as u8
    }

    /// Instruction length bit \[25\]: 4 bytes when set.
    pub const fn instruction_length(self) -> u64 {
        if self.0 & (1 << 25) != 0 { 4 } else { 2 }
    }

    /// Instruction specific syndrome, bits \[24:0\].
    pub const fn iss(self) -> u32 {
        (self.0 & 0x01FF_FFFF) as u32
    }

    /// For HVC/SMC: the immediate, ISS bits \[15:0\].
    pub const fn call_immediate(self) -> u16 {
        (self.0 & 0xFFFF) as u16
    }

    /// For data aborts: WnR, ISS bit \[6\] (the access was a write).
    pub const fn is_write(self) -> bool {
        self.0 & (1 << 6) != 0
    }

    /// For data aborts: S1PTW, ISS bit \[7\] (fault on a stage-1 table walk).
    pub const fn is_stage1_walk(self) -> bool {
        self.0 & (1 << 7) != 0
    }

    /// For aborts: the fault status code, ISS bits \[5:0\] (DFSC/IFSC).
    pub const fn fault_status(self) -> FaultStatus {
        let code = (self.0 & 0x3F) as u8;
        let level = code & 0x3;
        match code & 0x3C {
            0x00 => FaultStatus::AddressSize(level),
            0x04 => FaultStatus::Translation(level),
            0x08 => FaultStatus::AccessFlag(level),
            0x0C => FaultStatus::Permission(level),
            _ if code == 0x21 => FaultStatus::Alignment,
            _ if code == 0x10 => FaultStatus::External,
            _ => FaultStatus::Other(code),
        }
    }

    /// For a trapped system instruction (EC 0x18): whether it is a data-cache operation by
    /// set/way, `DC ISW`, `DC CSW` or `DC CISW` (trapped by `HCR_EL2.TSW`). ISS (Arm ARM
    /// D24.2.40, "ISS encoding for an exception from MSR, MRS, or System instruction"):
    /// Op0 \[21:20\] = 1, Op2 \[19:17\] = 2, Op1 \[16:14\] = 0, CRn \[13:10\] = 7,
    /// CRm \[4:1\] = 6 (ISW), 10 (CSW) or 14 (CISW), Direction \[0\] = 0 (a write).
    pub const fn is_set_way_cache_op(self) -> bool {
        if self.class() != class::SYSREG {
            return false;
        }
        let iss = self.iss();
        let op0 = (iss >> 20) & 0x3;
        let op2 = (iss >> 17) & 0x7;
        let op1 = (iss >> 14) & 0x7;
        let crn = (iss >> 10) & 0xF;
        let crm = (iss >> 1) & 0xF;
        let write = iss & 1 == 0;
        op0 == 1 && op2 == 2 && op1 == 0 && crn == 7 && matches!(crm, 6 | 10 | 14) && write
    }

    /// For a data abort with a valid instruction syndrome (ISV, ISS bit \[24\]; Arm ARM
    /// D24.2.40, "ISS encoding for an exception from a Data Abort"): the access, so the
    /// kernel can perform it for the partition. `None` when ISV is clear (a load or store
    /// pair, writeback, SIMD: nothing the kernel emulates).
    pub const fn data_access(self) -> Option<DataAccess> {
        let iss = self.iss();
        if iss & (1 << 24) == 0 {
            return None;
        }
        Some(DataAccess {
            bytes: 1 << ((iss >> 22) & 0x3),
            sign_extend: iss & (1 << 21) != 0,
            register: ((iss >> 16) & 0x1F) as u8,
            sixty_four: iss & (1 << 15) != 0,
            write: iss & (1 << 6) != 0,
        })
    }

    /// For a trapped `MSR`/`MRS` (EC 0x18): which register, which general register, which
    /// direction (ISS: Op0 \[21:20\], Op2 \[19:17\], Op1 \[16:14\], CRn \[13:10\],
    /// Rt \[9:5\], CRm \[4:1\], Direction \[0\], 1 for a read).
    pub const fn system_register(self) -> SystemRegisterAccess {
        let iss = self.iss();
        SystemRegisterAccess {
            op0: ((iss >> 20) & 0x3) as u8,
            op1: ((iss >> 14) & 0x7) as u8,
            crn: ((iss >> 10) & 0xF) as u8,
            crm: ((iss >> 1) & 0xF) as u8,
            op2: ((iss >> 17) & 0x7) as u8,
            register: ((iss >> 5) & 0x1F) as u8,
            read: iss & 1 != 0,
        }
    }

    /// A short name of the exception class.
    pub const fn class_name(self) -> &'static str {
        match self.class() {
            class::UNKNOWN => "unknown reason",
            class::WFX => "WFI/WFE",
            class::FP => "FP/SIMD access",
            class::ILLEGAL_STATE => "illegal execution state",
            class::HVC64 => "HVC",
            class::SMC64 => "SMC",
            class::SYSREG => "system register access",
            class::IABT_LOWER | class::IABT_SAME => "instruction abort",
            class::PC_ALIGNMENT => "PC alignment fault",
            class::DABT_LOWER | class::DABT_SAME => "data abort",
            class::SP_ALIGNMENT => "SP alignment fault",
            class::SERROR => "SError",
            class::BRK64 => "BRK",
            _ => "other",
        }
    }
}

impl fmt::Debug for Esr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Esr({:#x}: {})", self.0, self)
    }
}

impl fmt::Display for Esr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "EC {:#04x} {}", self.class(), self.class_name())?;
        match self.class() {
            class::DABT_LOWER | class::DABT_SAME => write!(
                f,
                ", {}, {:?}",
                if self.is_write() { "write" } else { "read" },
                self.fault_status()
            ),
            class::IABT_LOWER | class::IABT_SAME => write!(f, ", {:?}", self.fault_status()),
            _ => Ok(()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decodes_the_access_behind_a_data_abort() {
        // EC=0x24, IL, ISV, SAS=2 (word), SRT=5, WnR, DFSC translation level 3: `str w5, [..]`.
        let esr =
            Esr::new((0x24 << 26) | (1 << 25) | (1 << 24) | (2 << 22) | (5 << 16) | (1 << 6) | 0x7);
        assert_eq!(
            esr.data_access(),
            Some(DataAccess {
                bytes: 4,
                sign_extend: false,
                register: 5,
                sixty_four: false,
                write: true
            })
        );
        // `ldr x30, [..]`, 64-bit; and a load pair (ISV clear) gives nothing.
        let ldr = Esr::new(
            (0x24 << 26) | (1 << 25) | (1 << 24) | (3 << 22) | (30 << 16) | (1 << 15) | 0x7,
        );
        let access = ldr.data_access().unwrap();
        assert_eq!(
            (
                access.bytes,
                access.register,
                access.sixty_four,
                access.write
            ),
            (8, 30, true, false)
        );
        assert_eq!(Esr::new((0x24 << 26) | (1 << 25) | 0x7).data_access(), None);
    }

    #[test]
    fn decodes_a_trapped_system_register() {
        // `msr oslar_el1, x3`: Op0 2, Op1 0, CRn 1, CRm 0, Op2 4, Rt 3, a write.
        let iss = (2 << 20) | (4 << 17) | (1 << 10) | (3 << 5);
        let access = Esr::new((0x18 << 26) | (1 << 25) | iss).system_register();
        assert_eq!(
            access,
            SystemRegisterAccess {
                op0: 2,
                op1: 0,
                crn: 1,
                crm: 0,
                op2: 4,
                register: 3,
                read: false
            }
        );
        // `mrs x7, pmcr_el0`: Op0 3, Op1 3, CRn 9, CRm 12, Op2 0, a read.
        let iss = (3 << 20) | (3 << 14) | (9 << 10) | (7 << 5) | (12 << 1) | 1;
        let access = Esr::new((0x18 << 26) | iss).system_register();
        assert_eq!(
            (
                access.op1,
                access.crn,
                access.crm,
                access.register,
                access.read
            ),
            (3, 9, 12, 7, true)
        );
    }

    #[test]
    fn decodes_a_stage2_read_translation_fault() {
        // EC=0x24, IL=1, ISV=0, WnR=0, DFSC=0b000111 (translation fault, level 3).
        let esr = Esr::new((0x24 << 26) | (1 << 25) | 0x07);
        assert_eq!(esr.class(), class::DABT_LOWER);
        assert!(!esr.is_write());
        assert_eq!(esr.fault_status(), FaultStatus::Translation(3));
        assert_eq!(esr.instruction_length(), 4);
        assert_eq!(esr.to_string(), "EC 0x24 data abort, read, Translation(3)");
    }

    /// The syndrome of a trapped `DC <op>, Xt` with CRm `crm` and Op2 `op2`, Rt = x3.
    fn dc(crm: u64, op2: u64) -> Esr {
        Esr::new(
            (0x18 << 26) | (1 << 25) | (1 << 20) | (op2 << 17) | (7 << 10) | (3 << 5) | (crm << 1),
        )
    }

    #[test]
    fn recognises_set_way_cache_operations_only() {
        assert!(dc(6, 2).is_set_way_cache_op(), "DC ISW");
        assert!(dc(10, 2).is_set_way_cache_op(), "DC CSW");
        assert!(dc(14, 2).is_set_way_cache_op(), "DC CISW");
        assert!(!dc(6, 1).is_set_way_cache_op(), "DC IVAC");
        assert!(!dc(14, 1).is_set_way_cache_op(), "DC CIVAC");
        assert!(!dc(4, 1).is_set_way_cache_op(), "DC ZVA");
        // The same encoding read (MRS direction), or under another exception class.
        assert!(!Esr::new(dc(14, 2).raw() | 1).is_set_way_cache_op());
        assert!(!Esr::new((dc(14, 2).raw() & !(0x3F << 26)) | (0x16 << 26)).is_set_way_cache_op());
        // PMCR_EL0 (Op0 3, Op1 3, CRn 9, CRm 12, Op2 0): the other trapped system accesses.
        let pmcr = Esr::new((0x18 << 26) | (3 << 20) | (3 << 14) | (9 << 10) | (12 << 1));
        assert!(!pmcr.is_set_way_cache_op());
    }

    #[test]
    fn decodes_write_permission_fault_and_hvc_immediate() {
        let esr = Esr::new((0x24 << 26) | (1 << 6) | 0x0F);
        assert!(esr.is_write());
        assert_eq!(esr.fault_status(), FaultStatus::Permission(3));
        let hvc = Esr::new((0x16 << 26) | (1 << 25) | 0x1234);
        assert_eq!(hvc.class(), class::HVC64);
        assert_eq!(hvc.call_immediate(), 0x1234);
    }
}
