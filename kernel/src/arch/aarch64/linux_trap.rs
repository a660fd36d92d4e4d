//! The traps of a Linux partition the kernel serves instead of stopping it: loads and
//! stores to the GIC distributor and (GICv3) redistributor, which its stage 2 leaves
//! unmapped, and `MSR`/`MRS` of the registers `MDCR_EL2` and the GIC trap. The decisions
//! are portable ([`crate::gicd_filter`], [`crate::linux`]); this performs the access in
//! the partition's registers and steps over the instruction.

use super::esr::{DataAccess, class};
use super::gic::{self, TrappedFrame};
use super::platform::Aarch64Platform;
use super::trap::Trap;
use crate::gicd_filter::{Access, DistributorRegisters, Width};
use crate::kernel::{Kernel, Step};
use crate::linux::Encoding;
use crate::vcpu::VcpuRegs;

/// Serves `trap` if the running partition is a Linux one and the trap is one the kernel
/// performs for it; `None` lets the usual path decide (which stops the partition for an
/// abort or a system register it does not serve). Out of line and cold: the common traps
/// (hypercalls, interrupts) never come here, and their path keeps its registers.
#[cold]
#[inline(never)]
pub(super) fn serve(kernel: &mut Kernel<'static, Aarch64Platform>, trap: &Trap) -> Option<Step> {
    if !kernel.current_is_linux() {
        return None;
    }
    match trap.esr().class() {
        class::DABT_LOWER => gic_access(kernel, trap),
        class::SYSREG => system_register(kernel, trap),
        _ => None,
    }
}

/// A load or store to a GIC frame the partition's device tree names.
fn gic_access(kernel: &mut Kernel<'static, Aarch64Platform>, trap: &Trap) -> Option<Step> {
    let access = trap.esr().data_access()?;
    let (frame, offset) = gic::trapped_frame(trap.faulting_ipa().raw())?;
    let width = match access.bytes {
        1 => Width::Byte,
        2 => Width::Half,
        4 => Width::Word,
        _ => Width::Double,
    };
    let written = access
        .write
        .then(|| read_register(kernel.current_regs_mut(), access.register));
    let value = match frame {
        TrappedFrame::Distributor { base, size } => {
            let filtered = Access {
                offset: offset as u32,
                width,
                write: written,
            };
            kernel.linux_distributor(filtered, &mut DistributorMmio { base, size })?
        }
        TrappedFrame::Redistributor { .. } if written.is_some() => 0,
        TrappedFrame::Redistributor { .. } => crate::linux::redistributor_read(offset, width),
    };
    let regs = kernel.current_regs_mut();
    if !access.write {
        write_register(regs, access, value);
    }
    regs.pc += trap.esr().instruction_length();
    Some(Step::Resume)
}

/// A trapped `MSR`/`MRS` the kernel serves for Linux (debug and performance-monitor
/// registers read as zero; SGIs to itself).
fn system_register(kernel: &mut Kernel<'static, Aarch64Platform>, trap: &Trap) -> Option<Step> {
    let access = trap.esr().system_register();
    let encoding = Encoding {
        op0: access.op0,
        op1: access.op1,
        crn: access.crn,
        crm: access.crm,
        op2: access.op2,
    };
    let value = read_register(kernel.current_regs_mut(), access.register);
    let read = kernel.linux_system_register(encoding, access.read, value)?;
    let regs = kernel.current_regs_mut();
    if access.read && access.register < 31 {
        regs.x[usize::from(access.register)] = read;
    }
    regs.pc += trap.esr().instruction_length();
    Some(Step::Resume)
}

/// General register `n`, with 31 as the zero register.
fn read_register(regs: &VcpuRegs, n: u8) -> u64 {
    regs.x.get(usize::from(n)).copied().unwrap_or(0)
}

/// Puts a load's `value` in its register: sign-extended if the load says so, cut to 32 bits
/// for a `w` register (Arm ARM D24.2.40: SSE, SF).
fn write_register(regs: &mut VcpuRegs, access: DataAccess, value: u64) {
    let bits = 8 * u32::from(access.bytes);
    let mut value = if bits < 64 {
        value & ((1 << bits) - 1)
    } else {
        value
    };
    if access.sign_extend && bits < 64 && value & (1 << (bits - 1)) != 0 {
        value |= !((1 << bits) - 1);
    }
    if !access.sixty_four {
        value &= 0xffff_ffff;
    }
    if let Some(register) = regs.x.get_mut(usize::from(access.register)) {
        *register = value;
    }
}

/// The real distributor's registers, for the filter.
struct DistributorMmio {
    base: usize,
    size: u64,
}

impl DistributorMmio {
    /// Whether `offset` is a 32-bit register of the frame.
    fn holds(&self, offset: u32) -> bool {
        offset.is_multiple_of(4) && u64::from(offset) < self.size
    }
}

impl DistributorRegisters for DistributorMmio {
    fn read32(&mut self, offset: u32) -> u32 {
        if !self.holds(offset) {
            return 0;
        }
        // SAFETY: `base` is the distributor the device tree names, identity mapped as
        // Device memory at EL2; `offset` is a word-aligned offset inside its frame (checked
        // above). The filter reads no register with read side effects (no acknowledge
        // registers live in the distributor).
        unsafe { core::ptr::read_volatile((self.base + offset as usize) as *const u32) }
    }

    fn write32(&mut self, offset: u32, value: u32) {
        if !self.holds(offset) {
            return;
        }
        // SAFETY: as for `read32`; the filter writes only the partition's own interrupts'
        // bits of per-interrupt registers.
        unsafe { core::ptr::write_volatile((self.base + offset as usize) as *mut u32, value) }
    }
}
