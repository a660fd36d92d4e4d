//! Safe wrappers for the kernel's hypercalls (SMCCC, `HVC #0`): exo's own calls plus the
//! SMCCC and PSCI functions a partition may use.
//!
//! Every wrapper names its call as the ABI's [`Call`] (whose identifiers, arguments and
//! errors `exo_abi::call::CALLS` describes) and returns the kernel's `x0` decoded with
//! [`Error::from_register`]. Functions of the SMC32 convention (SMCCC and PSCI version
//! queries) return a 32-bit result in `w0`, so their result is sign-extended from 32 bits
//! before decoding.

use core::fmt;

use exo_abi::Error;
use exo_abi::call::{self, Call};

use crate::arch;
use crate::mem::call::PartitionId;

/// Issues `call` with up to six arguments in `x1`..`x6` (as many as the ABI describes for
/// it) and decodes `x0`.
pub fn invoke(call: Call, args: &[u64]) -> Result<u64, Error> {
    debug_assert!(
        args.len()
            <= call
                .describe()
                .args
                .last()
                .map_or(0, |a| usize::from(a.registers.last)),
        "more arguments than {} takes",
        call.name()
    );
    self::call(call.id(), args)
}

/// Calls `function`, any identifier, known or not, with up to six arguments in
/// `x1`..`x6` and decodes `x0`.
///
/// This is the raw interface; prefer [`invoke`] or the named wrappers below.
pub fn call(function: u32, args: &[u64]) -> Result<u64, Error> {
    // Register by register (a slice copy would zero and fill an array in memory).
    let arg = |i: usize| args.get(i).copied().unwrap_or(0);
    let x0 = arch::hvc(function, [arg(0), arg(1), arg(2), arg(3), arg(4), arg(5)]);
    let x0 = if function & call::SMC64 == 0 {
        // SMC32: only w0 is defined.
        x0 as u32 as i32 as i64 as u64
    } else {
        x0
    };
    Error::from_register(x0)
}

/// `EXO_ABI_VERSION`: the ABI version the kernel speaks ([`exo_abi::ABI_VERSION`] format).
pub fn abi_version() -> Result<Version, Error> {
    invoke(Call::AbiVersion, &[]).map(Version::from_register)
}

/// `EXO_CONSOLE_WRITE`: writes `bytes` to the system console, in chunks of at most
/// [`call::CONSOLE_WRITE_MAX`] bytes. Returns how many bytes the kernel took; stops at the
/// first error, which is returned only if nothing at all was written.
pub fn console_write(bytes: &[u8]) -> Result<usize, Error> {
    let mut written = 0;
    while written < bytes.len() {
        let rest = &bytes[written..];
        let chunk = &rest[..rest.len().min(call::CONSOLE_WRITE_MAX as usize)];
        let ipa = arch::ipa_of(chunk);
        match invoke(Call::ConsoleWrite, &[ipa.raw(), chunk.len() as u64]) {
            Ok(0) => break,
            Ok(taken) => written += (taken as usize).min(chunk.len()),
            Err(error) if written == 0 => return Err(error),
            Err(_) => break,
        }
    }
    Ok(written)
}

/// `EXO_YIELD`: lets the other partitions run; returns when this one is scheduled again.
pub fn yield_now() -> Result<u64, Error> {
    invoke(Call::Yield, &[])
}

/// `EXO_EXIT`: ends this partition with `status` (0 is success).
///
/// Should the kernel ever return from `EXO_EXIT`, falls back to PSCI `SYSTEM_OFF` and then
/// waits forever.
pub fn exit(status: u64) -> ! {
    let _ = invoke(Call::Exit, &[status]);
    let _ = system_off();
    arch::halt()
}

/// `EXO_IRQ_ENABLE`: asks the kernel to deliver interrupt `intid`, an SPI this partition
/// owns (`interrupts = [...]` in its configuration) or a kernel signal
/// ([`call::signal`]: then it comes as a virtual interrupt instead of an upcall).
/// Errors: `NotOwner` (not this partition's), `InvalidParameter` (INTID >= 1020).
pub fn irq_enable(intid: u32) -> Result<(), Error> {
    invoke(Call::IrqEnable, &[u64::from(intid)]).map(drop)
}

/// `EXO_IRQ_DISABLE`: stops delivery of interrupt `intid` (owned, as for [`irq_enable`]).
pub fn irq_disable(intid: u32) -> Result<(), Error> {
    invoke(Call::IrqDisable, &[u64::from(intid)]).map(drop)
}

/// `EXO_IRQ_SET_PRIORITY`: the virtual priority `intid` is injected with (0 highest).
pub fn irq_set_priority(intid: u32, priority: u8) -> Result<(), Error> {
    invoke(
        Call::IrqSetPriority,
        &[u64::from(intid), u64::from(priority)],
    )
    .map(drop)
}

/// `EXO_IRQ_SET_TARGET`: routes the owned SPI `intid` to `core`, one this partition runs on.
pub fn irq_set_target(intid: u32, core: u32) -> Result<(), Error> {
    invoke(Call::IrqSetTarget, &[u64::from(intid), u64::from(core)]).map(drop)
}

/// `EXO_IRQ_RAISE`: makes the owned SPI `intid` pending in the distributor, as its device
/// would; for a signal, raises it in this partition.
pub fn irq_raise(intid: u32) -> Result<(), Error> {
    invoke(Call::IrqRaise, &[u64::from(intid)]).map(drop)
}

/// `EXO_WAIT_EVENT`: blocks, giving the CPU away, until this partition has a virtual
/// interrupt pending (at once if it has). The interrupt is taken only when IRQs are unmasked;
/// [`crate::irq::wait_until`] builds a wait without lost wake-ups on this.
pub fn wait_event() -> Result<(), Error> {
    invoke(Call::WaitEvent, &[]).map(drop)
}

/// `EXO_DONATE`: gives the rest of this time slice to `partition`, which runs at once.
/// Errors: `UnknownPartition` (no such partition, or this one), `Busy` (it cannot run now),
/// `InvalidParameter` (it runs on another core).
pub fn donate(partition: PartitionId) -> Result<(), Error> {
    invoke(Call::Donate, &[u64::from(partition.0)]).map(drop)
}

/// `SMCCC_VERSION`: the SMC Calling Convention version the kernel implements.
pub fn smccc_version() -> Result<Version, Error> {
    invoke(Call::SmcccVersion, &[]).map(Version::from_register)
}

/// `PSCI_VERSION`: the PSCI version the kernel implements for partitions.
pub fn psci_version() -> Result<Version, Error> {
    invoke(Call::PsciVersion, &[]).map(Version::from_register)
}

/// PSCI `SYSTEM_OFF`. For a partition this ends only the partition, successfully.
///
/// Returns only if the kernel refused, with the reason.
pub fn system_off() -> Error {
    match invoke(Call::PsciSystemOff, &[]) {
        Err(error) => error,
        Ok(_) => Error::NotSupported,
    }
}

/// PSCI `CPU_OFF`: stops the calling vCPU.
///
/// Returns only if the kernel refused, with the reason.
pub fn cpu_off() -> Error {
    match invoke(Call::PsciCpuOff, &[]) {
        Err(error) => error,
        Ok(_) => Error::NotSupported,
    }
}

/// A `major.minor` version as SMCCC, PSCI and exo report it: major in bits 30:16, minor in
/// bits 15:0.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct Version {
    /// Major version.
    pub major: u16,
    /// Minor version.
    pub minor: u16,
}

impl Version {
    /// Decodes a version register value.
    pub const fn from_register(value: u64) -> Self {
        Self {
            major: ((value >> 16) & 0x7FFF) as u16,
            minor: value as u16,
        }
    }
}

impl fmt::Display for Version {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}.{}", self.major, self.minor)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn versions_decode_major_and_minor() {
        let v = Version::from_register(call::SMCCC_IMPLEMENTED_VERSION);
        assert_eq!(v, Version { major: 1, minor: 1 });
        assert_eq!(format!("{v}"), "1.1");
    }

    #[test]
    fn errors_decode_for_both_calling_conventions() {
        // The host fake answers NOT_SUPPORTED (-1) to everything.
        assert_eq!(psci_version(), Err(Error::NotSupported));
        assert_eq!(yield_now(), Err(Error::NotSupported));
    }

    #[test]
    fn interrupt_calls_report_the_kernels_error() {
        assert_eq!(irq_enable(48), Err(Error::NotSupported));
        assert_eq!(irq_disable(48), Err(Error::NotSupported));
        assert_eq!(irq_set_priority(48, 0x80), Err(Error::NotSupported));
        assert_eq!(irq_set_target(48, 0), Err(Error::NotSupported));
        assert_eq!(irq_raise(48), Err(Error::NotSupported));
        assert_eq!(wait_event(), Err(Error::NotSupported));
        assert_eq!(donate(PartitionId(1)), Err(Error::NotSupported));
    }
}
