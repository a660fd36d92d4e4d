//! SMCCC function identifiers understood by the exo kernel.
//!
//! A library OS issues `HVC #0` (or `SMC #0`, which the kernel traps) with the function
//! identifier in `w0` and arguments in `x1`..`x7`, per the SMC Calling Convention (Arm DEN 0028,
//! SMCCC 1.1 and later). Results come back in `x0`..`x3`; `x0` is a non-negative value on
//! success or a negative [`crate::Error`] code. Registers `x4`..`x17` are preserved unless a
//! call says otherwise.
//!
//! exo's own calls are Fast calls in the SMC64 range of the *Vendor Specific Hypervisor
//! Service* owning entity (OEN 6): identifiers `0xC600_0000 | n`.

pub use smccc::arch::{SMCCC_ARCH_FEATURES, SMCCC_VERSION};
pub use smccc::psci::{
    PSCI_CPU_OFF, PSCI_FEATURES, PSCI_SYSTEM_OFF, PSCI_SYSTEM_RESET, PSCI_VERSION,
};

/// SMCCC version the kernel implements (1.1), as returned by [`SMCCC_VERSION`].
pub const SMCCC_IMPLEMENTED_VERSION: u64 = 0x0001_0001;
/// PSCI version the kernel implements for partitions (1.1), as returned by [`PSCI_VERSION`].
pub const PSCI_IMPLEMENTED_VERSION: u64 = 0x0001_0001;

/// Function-identifier bit 31: a Fast call.
const FAST: u32 = 1 << 31;
/// Function-identifier bit 30: the SMC64 calling convention.
const SMC64: u32 = 1 << 30;
/// Owning entity number of the Vendor Specific Hypervisor Service, in bits 29:24.
const OEN_VENDOR_HYP: u32 = 6 << 24;

/// Builds the identifier of exo function `number`.
pub const fn exo_call(number: u16) -> u32 {
    FAST | SMC64 | OEN_VENDOR_HYP | number as u32
}

/// Whether `function` lies in exo's vendor hypervisor range.
pub const fn is_exo_call(function: u32) -> bool {
    function & 0xFFFF_0000 == exo_call(0)
}

/// `EXO_ABI_VERSION() -> version`: the [`crate::ABI_VERSION`] the kernel speaks.
pub const EXO_ABI_VERSION: u32 = exo_call(0x00);

/// `EXO_CONSOLE_WRITE(ipa, len) -> bytes_written`: writes `len` bytes (at most
/// [`CONSOLE_WRITE_MAX`]) from the caller's memory at `ipa` to the system console, prefixed
/// with the partition's name at the start of each line. The buffer must be bound readable.
/// Errors: [`crate::Error::TooLarge`], [`crate::Error::BadAddress`].
pub const EXO_CONSOLE_WRITE: u32 = exo_call(0x01);

/// `EXO_YIELD() -> 0`: gives the CPU to the next runnable partition. Returns when the caller
/// is scheduled again.
pub const EXO_YIELD: u32 = exo_call(0x02);

/// `EXO_EXIT(status) -> !`: ends the calling partition. Status 0 is success; anything else
/// is failure and is reported by the kernel and by `scripts/run`.
pub const EXO_EXIT: u32 = exo_call(0x03);

/// Largest `len` accepted by [`EXO_CONSOLE_WRITE`].
pub const CONSOLE_WRITE_MAX: u64 = 4096;

/// Exit status a library OS uses when it panics.
pub const EXIT_STATUS_PANIC: u64 = 101;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exo_calls_are_fast_smc64_vendor_hypervisor_calls() {
        assert_eq!(EXO_CONSOLE_WRITE, 0xC600_0001);
        assert!(is_exo_call(EXO_EXIT));
        assert!(!is_exo_call(PSCI_SYSTEM_OFF));
        assert!(!is_exo_call(SMCCC_VERSION));
    }
}
