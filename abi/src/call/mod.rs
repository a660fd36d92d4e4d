//! SMCCC function identifiers understood by the exo kernel.
//!
//! A library OS issues `HVC #0` (or `SMC #0`, which the kernel traps) with the function
//! identifier in `w0` and arguments in `x1`..`x7`, per the SMC Calling Convention (Arm DEN 0028,
//! SMCCC 1.1 and later). Results come back in `x0`..`x3`; `x0` is a non-negative value on
//! success or a negative [`crate::Error`] code. Registers `x4`..`x17` are preserved unless a
//! call says otherwise.
//!
//! Every call is described once, in [`CALLS`]: its name, identifier, arguments, results and
//! the exact set of errors it can return. The kernel decodes `w0` into a [`Call`] through
//! [`Call::try_from`], the library OS issues the same identifiers, and `docs/abi.md`'s call
//! and error tables are generated from the descriptions ([`markdown`]).
//!
//! exo's own calls are Fast calls in the SMC64 range of the *Vendor Specific Hypervisor
//! Service* owning entity (OEN 6): identifiers `0xC600_0000 | n`.

mod table;

#[cfg(feature = "alloc")]
pub mod markdown;

pub use table::{Arg, ArgKind, CALLS, Description, ErrorCase, Group, Registers, Results, Value};

use crate::Error;

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
pub const SMC64: u32 = 1 << 30;
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

// ---------------------------------------------------------------------------------------
// Function identifiers. What each call takes, returns and can fail with is described once,
// in [`CALLS`] (one [`Description`] per [`Call`]); `docs/abi.md` is generated from it.

/// `EXO_ABI_VERSION`: see [`Call::AbiVersion`].
pub const EXO_ABI_VERSION: u32 = exo_call(0x00);
/// `EXO_CONSOLE_WRITE`: see [`Call::ConsoleWrite`].
pub const EXO_CONSOLE_WRITE: u32 = exo_call(0x01);
/// `EXO_YIELD`: see [`Call::Yield`].
pub const EXO_YIELD: u32 = exo_call(0x02);
/// `EXO_EXIT`: see [`Call::Exit`].
pub const EXO_EXIT: u32 = exo_call(0x03);

// Memory: allocation, binding, sharing and revocation (ABI 1.1).
/// `EXO_FRAME_ALLOC`: see [`Call::FrameAlloc`].
pub const EXO_FRAME_ALLOC: u32 = exo_call(0x10);
/// `EXO_FRAME_ALLOC_AT`: see [`Call::FrameAllocAt`].
pub const EXO_FRAME_ALLOC_AT: u32 = exo_call(0x11);
/// `EXO_FRAME_FREE`: see [`Call::FrameFree`].
pub const EXO_FRAME_FREE: u32 = exo_call(0x12);
/// `EXO_BIND`: see [`Call::Bind`].
pub const EXO_BIND: u32 = exo_call(0x13);
/// `EXO_UNBIND`: see [`Call::Unbind`].
pub const EXO_UNBIND: u32 = exo_call(0x14);
/// `EXO_GRANT`: see [`Call::Grant`].
pub const EXO_GRANT: u32 = exo_call(0x15);
/// `EXO_GRANT_REVOKE`: see [`Call::GrantRevoke`].
pub const EXO_GRANT_REVOKE: u32 = exo_call(0x16);
/// `EXO_REVOKE_ACK`: see [`Call::RevokeAck`].
pub const EXO_REVOKE_ACK: u32 = exo_call(0x17);
/// `EXO_SET_UPCALL`: see [`Call::SetUpcall`].
pub const EXO_SET_UPCALL: u32 = exo_call(0x18);
/// `EXO_UPCALL_RETURN`: see [`Call::UpcallReturn`].
pub const EXO_UPCALL_RETURN: u32 = exo_call(0x19);
/// `EXO_MEM_INFO`: see [`Call::MemInfo`].
pub const EXO_MEM_INFO: u32 = exo_call(0x1A);
/// `EXO_PARTITION_LOOKUP`: see [`Call::PartitionLookup`].
pub const EXO_PARTITION_LOOKUP: u32 = exo_call(0x1B);
/// `EXO_SELF_CHECK`: see [`Call::SelfCheck`].
pub const EXO_SELF_CHECK: u32 = exo_call(0x1C);
/// `EXO_GRANT_QUERY`: see [`Call::GrantQuery`].
pub const EXO_GRANT_QUERY: u32 = exo_call(0x1D);
/// `EXO_FRAME_RELEASE`: see [`Call::FrameRelease`].
pub const EXO_FRAME_RELEASE: u32 = exo_call(0x1E);
/// `EXO_SET_LOSS_ORDER`: see [`Call::SetLossOrder`].
pub const EXO_SET_LOSS_ORDER: u32 = exo_call(0x1F);

// Protected control transfer (ABI 1.2).
/// `EXO_CALL`: see [`Call::Call`].
pub const EXO_CALL: u32 = exo_call(0x20);
/// `EXO_WAIT`: see [`Call::Wait`].
pub const EXO_WAIT: u32 = exo_call(0x21);
/// `EXO_REPLY_WAIT`: see [`Call::ReplyWait`].
pub const EXO_REPLY_WAIT: u32 = exo_call(0x22);
/// `EXO_SEND`: see [`Call::Send`].
pub const EXO_SEND: u32 = exo_call(0x23);

// Interrupt and CPU calls (ABI 1.3).
/// `EXO_WAIT_EVENT`: see [`Call::WaitEvent`].
pub const EXO_WAIT_EVENT: u32 = exo_call(0x24);
/// `EXO_DONATE`: see [`Call::Donate`].
pub const EXO_DONATE: u32 = exo_call(0x25);
/// `EXO_RECEIVE`: see [`Call::Receive`].
pub const EXO_RECEIVE: u32 = exo_call(0x26);
/// `EXO_IRQ_ENABLE`: see [`Call::IrqEnable`].
pub const EXO_IRQ_ENABLE: u32 = exo_call(0x30);
/// `EXO_IRQ_DISABLE`: see [`Call::IrqDisable`].
pub const EXO_IRQ_DISABLE: u32 = exo_call(0x31);
/// `EXO_IRQ_SET_PRIORITY`: see [`Call::IrqSetPriority`].
pub const EXO_IRQ_SET_PRIORITY: u32 = exo_call(0x32);
/// `EXO_IRQ_SET_TARGET`: see [`Call::IrqSetTarget`].
pub const EXO_IRQ_SET_TARGET: u32 = exo_call(0x33);
/// `EXO_IRQ_RAISE`: see [`Call::IrqRaise`].
pub const EXO_IRQ_RAISE: u32 = exo_call(0x34);

/// Declares [`Call`] with one variant per function identifier, its list [`Call::ALL`] and
/// its decoder, from one list, so the three cannot disagree.
macro_rules! calls {
    ($($(#[$doc:meta])* $variant:ident = $id:ident,)*) => {
        /// Every function the kernel serves, decoded from `w0` once
        /// ([`Call::try_from`]); anything else is `NotSupported`.
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
        #[repr(u32)]
        pub enum Call {
            $($(#[$doc])* $variant = $id,)*
        }

        impl Call {
            /// Every call, in the order of [`CALLS`].
            pub const ALL: &'static [Call] = &[$(Call::$variant,)*];
        }

        impl TryFrom<u32> for Call {
            type Error = Error;

            /// Decodes a function identifier; unknown ones are [`Error::NotSupported`].
            fn try_from(function: u32) -> Result<Call, Error> {
                match function {
                    $($id => Ok(Call::$variant),)*
                    _ => Err(Error::NotSupported),
                }
            }
        }
    };
}

calls! {
    /// SMCCC `SMCCC_VERSION`.
    SmcccVersion = SMCCC_VERSION,
    /// SMCCC `SMCCC_ARCH_FEATURES`.
    SmcccArchFeatures = SMCCC_ARCH_FEATURES,
    /// PSCI `PSCI_VERSION`.
    PsciVersion = PSCI_VERSION,
    /// PSCI `PSCI_FEATURES`.
    PsciFeatures = PSCI_FEATURES,
    /// PSCI `SYSTEM_OFF`.
    PsciSystemOff = PSCI_SYSTEM_OFF,
    /// PSCI `CPU_OFF`.
    PsciCpuOff = PSCI_CPU_OFF,
    /// `EXO_ABI_VERSION`.
    AbiVersion = EXO_ABI_VERSION,
    /// `EXO_CONSOLE_WRITE`.
    ConsoleWrite = EXO_CONSOLE_WRITE,
    /// `EXO_YIELD`.
    Yield = EXO_YIELD,
    /// `EXO_EXIT`.
    Exit = EXO_EXIT,
    /// `EXO_FRAME_ALLOC`.
    FrameAlloc = EXO_FRAME_ALLOC,
    /// `EXO_FRAME_ALLOC_AT`.
    FrameAllocAt = EXO_FRAME_ALLOC_AT,
    /// `EXO_FRAME_FREE`.
    FrameFree = EXO_FRAME_FREE,
    /// `EXO_BIND`.
    Bind = EXO_BIND,
    /// `EXO_UNBIND`.
    Unbind = EXO_UNBIND,
    /// `EXO_GRANT`.
    Grant = EXO_GRANT,
    /// `EXO_GRANT_REVOKE`.
    GrantRevoke = EXO_GRANT_REVOKE,
    /// `EXO_REVOKE_ACK`.
    RevokeAck = EXO_REVOKE_ACK,
    /// `EXO_SET_UPCALL`.
    SetUpcall = EXO_SET_UPCALL,
    /// `EXO_UPCALL_RETURN`.
    UpcallReturn = EXO_UPCALL_RETURN,
    /// `EXO_MEM_INFO`.
    MemInfo = EXO_MEM_INFO,
    /// `EXO_PARTITION_LOOKUP`.
    PartitionLookup = EXO_PARTITION_LOOKUP,
    /// `EXO_SELF_CHECK`.
    SelfCheck = EXO_SELF_CHECK,
    /// `EXO_GRANT_QUERY`.
    GrantQuery = EXO_GRANT_QUERY,
    /// `EXO_FRAME_RELEASE`.
    FrameRelease = EXO_FRAME_RELEASE,
    /// `EXO_SET_LOSS_ORDER`.
    SetLossOrder = EXO_SET_LOSS_ORDER,
    /// `EXO_CALL`.
    Call = EXO_CALL,
    /// `EXO_WAIT`.
    Wait = EXO_WAIT,
    /// `EXO_REPLY_WAIT`.
    ReplyWait = EXO_REPLY_WAIT,
    /// `EXO_SEND`.
    Send = EXO_SEND,
    /// `EXO_WAIT_EVENT`.
    WaitEvent = EXO_WAIT_EVENT,
    /// `EXO_DONATE`.
    Donate = EXO_DONATE,
    /// `EXO_RECEIVE`.
    Receive = EXO_RECEIVE,
    /// `EXO_IRQ_ENABLE`.
    IrqEnable = EXO_IRQ_ENABLE,
    /// `EXO_IRQ_DISABLE`.
    IrqDisable = EXO_IRQ_DISABLE,
    /// `EXO_IRQ_SET_PRIORITY`.
    IrqSetPriority = EXO_IRQ_SET_PRIORITY,
    /// `EXO_IRQ_SET_TARGET`.
    IrqSetTarget = EXO_IRQ_SET_TARGET,
    /// `EXO_IRQ_RAISE`.
    IrqRaise = EXO_IRQ_RAISE,
}

impl Call {
    /// The function identifier (`w0`).
    pub const fn id(self) -> u32 {
        self as u32
    }

    /// Whether the call uses the SMC64 convention (all of exo's own); the SMCCC and PSCI
    /// queries are SMC32, whose result is the 32-bit `w0`.
    pub const fn is_smc64(self) -> bool {
        self.id() & SMC64 != 0
    }

    /// This call's entry in [`CALLS`].
    pub fn describe(self) -> &'static Description {
        CALLS
            .iter()
            .find(|d| d.call == self)
            .expect("CALLS describes every call (tested)")
    }

    /// The call's name as the documentation spells it, e.g. `EXO_BIND`.
    pub fn name(self) -> &'static str {
        self.describe().name
    }

    /// Whether `error` is one this call is declared to return.
    pub fn may_return(self, error: Error) -> bool {
        self.describe().errors.iter().any(|e| e.error == error)
    }
}

/// Virtual INTIDs of kernel-to-library-OS signals (also published in the info page). They lie
/// in the SGI range, which no physical interrupt of a partition uses.
pub mod signal {
    /// A revocation request is pending (see [`super::upcall::REVOCATION`]).
    pub const REVOCATION: u32 = 8;
    /// Frames were repossessed or a grant withdrawn.
    pub const REPOSSESSION: u32 = 9;
    /// A message from [`super::EXO_SEND`] waits; take it with [`super::EXO_RECEIVE`].
    pub const MESSAGE: u32 = 10;
    /// All of them.
    pub const ALL: [u32; 3] = [REVOCATION, REPOSSESSION, MESSAGE];
}

/// The EL1 virtual timer's interrupt (PPI 27), every partition's own.
pub const VIRTUAL_TIMER_INTID: u32 = 27;

/// Most frames one [`EXO_FRAME_ALLOC`] call may ask for (one page of addresses).
pub const FRAME_ALLOC_MAX: u64 = 512;

/// Most frames one [`EXO_FRAME_RELEASE`] call may name (one page of addresses).
pub const FRAME_RELEASE_MAX: u64 = 512;

/// Upcalls: how the kernel tells a library OS something it must act on.
///
/// An upcall is delivered when the partition is next resumed after a hypercall (never in
/// the middle of code a time slice interrupted), and never while one is running. The kernel saves the interrupted context (all general registers, PC, PSTATE),
/// then enters the registered entry point at EL1 with interrupts masked, the stack pointer
/// unchanged (AArch64 has no red zone, so the interrupted code's stack is safe), and:
/// `x0` = reason, `x1`..`x3` = reason-specific values. The handler ends with
/// [`EXO_UPCALL_RETURN`].
pub mod upcall {
    /// A revocation request is pending: read the revocation page. `x1` = request sequence.
    pub const REVOCATION: u64 = 1;
    /// Frames were repossessed or a grant withdrawn: read the repossession vector.
    /// `x1` = the vector's new total count.
    pub const REPOSSESSION: u64 = 2;
    /// A stage-2 fault on an unbound IPA: `x1` = IPA, `x2` = access (0 read, 1 write,
    /// 2 execute). Returning retries the access; `skip` skips it.
    pub const FAULT: u64 = 3;
    /// An asynchronous message ([`super::EXO_SEND`]): `x1` = sender's id, `x2` = the word.
    pub const MESSAGE: u64 = 4;
}

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
