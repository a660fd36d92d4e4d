//! Upcalls: the library OS's entry for the kernel's notices (revocation requests,
//! repossessions, faults on unbound IPAs, messages) and the program's hooks into it.
//!
//! [`register`] registers `dispatch` with the runtime's hooks and gives the kernel the entry
//! stub (in `arch`), which runs it on the upcall stack and ends the upcall with
//! `EXO_UPCALL_RETURN`. Revocation requests are answered by the installed policy
//! ([`crate::mem::set_revocation_policy`]); repossessions update the frame table; faults go
//! to the handler set with [`set_fault_handler`]; messages to the one set with
//! [`crate::ipc::set_message_handler`].

use core::sync::atomic::{AtomicBool, AtomicU64, Ordering};

use exo_abi::call::upcall;
use exo_abi::{Error, Ipa, UpcallFlags};
use spin::Mutex;

use crate::mem::{call, revocation};
use crate::runtime::{self, PerVcpu};
use crate::{EXIT_STATUS_EXCEPTION, arch, hypercall, println};

/// The access that faulted.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Access {
    /// A load.
    Read,
    /// A store.
    Write,
    /// An instruction fetch.
    Execute,
}

/// What to do about a fault on an unbound IPA.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FaultResolution {
    /// The handler bound something there: retry the access.
    Retry,
    /// Skip the faulting instruction (a load leaves its destination register unchanged).
    Skip,
    /// Stop the program with [`EXIT_STATUS_EXCEPTION`].
    Fail,
}

/// A fault handler: gets the faulting IPA and the access, runs in the upcall.
pub type FaultHandler = fn(Ipa, Access) -> FaultResolution;

static FAULT_HANDLER: Mutex<Option<FaultHandler>> = Mutex::new(None);
/// Set on a vCPU while it runs an upcall.
static IN_UPCALL: PerVcpu<AtomicBool> = PerVcpu::new([const { AtomicBool::new(false) }]);
static REVOCATION_UPCALLS: AtomicU64 = AtomicU64::new(0);
static REPOSSESSION_UPCALLS: AtomicU64 = AtomicU64::new(0);
static FAULT_UPCALLS: AtomicU64 = AtomicU64::new(0);
static MESSAGE_UPCALLS: AtomicU64 = AtomicU64::new(0);

/// Upcalls received so far, by reason.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct UpcallCounts {
    /// `REVOCATION` upcalls.
    pub revocation: u64,
    /// `REPOSSESSION` upcalls.
    pub repossession: u64,
    /// `FAULT` upcalls.
    pub fault: u64,
    /// `MESSAGE` upcalls.
    pub message: u64,
}

/// Registers the library OS's upcall entry with the kernel; faults on unbound IPAs are
/// reflected to it if a fault handler is set. Messages are delivered only once it is
/// registered. Needed before the kernel can ask for memory
/// back politely (without it, the abort protocol is all it has).
pub fn register() -> Result<(), Error> {
    let flags = if FAULT_HANDLER.lock().is_some() {
        UpcallFlags::FAULTS
    } else {
        UpcallFlags::empty()
    };
    // The upcall stub runs `dispatch` from now on (registered before the kernel learns the
    // stub's address; later calls register nothing new).
    runtime::hooks::set_upcall_handler(dispatch);
    call::set_upcall(arch::upcall_entry(), flags)
}

/// Sets the handler for faults on unbound IPAs and (re-)registers the upcall entry so the
/// kernel reflects them.
pub fn set_fault_handler(handler: FaultHandler) -> Result<(), Error> {
    *FAULT_HANDLER.lock() = Some(handler);
    register()
}

/// Whether the code running is an upcall handler.
pub fn in_upcall() -> bool {
    IN_UPCALL.current().load(Ordering::Relaxed)
}

/// Upcalls received so far.
pub fn counts() -> UpcallCounts {
    UpcallCounts {
        revocation: REVOCATION_UPCALLS.load(Ordering::Relaxed),
        repossession: REPOSSESSION_UPCALLS.load(Ordering::Relaxed),
        fault: FAULT_UPCALLS.load(Ordering::Relaxed),
        message: MESSAGE_UPCALLS.load(Ordering::Relaxed),
    }
}

/// Handles one upcall; returns the `skip` flag for `EXO_UPCALL_RETURN`. The entry stub runs
/// it (through the runtime's hooks, where [`register`] registers it) on the upcall stack
/// with `reason` in x0 and `values` in x1..x3.
fn dispatch(reason: u64, values: [u64; 3]) -> u64 {
    let in_upcall = IN_UPCALL.current();
    in_upcall.store(true, Ordering::Relaxed);
    let skip = match reason {
        upcall::REVOCATION => {
            REVOCATION_UPCALLS.fetch_add(1, Ordering::Relaxed);
            revocation::on_revocation_upcall();
            false
        }
        upcall::REPOSSESSION => {
            REPOSSESSION_UPCALLS.fetch_add(1, Ordering::Relaxed);
            revocation::on_repossession_upcall();
            false
        }
        upcall::FAULT => {
            FAULT_UPCALLS.fetch_add(1, Ordering::Relaxed);
            fault(Ipa::new(values[0]), values[1])
        }
        upcall::MESSAGE => {
            MESSAGE_UPCALLS.fetch_add(1, Ordering::Relaxed);
            crate::ipc::deliver(values[0], values[1]);
            false
        }
        _ => false,
    };
    in_upcall.store(false, Ordering::Relaxed);
    u64::from(skip)
}

/// Runs the fault handler; `true` to skip the instruction.
fn fault(ipa: Ipa, access: u64) -> bool {
    let access = match access {
        0 => Access::Read,
        1 => Access::Write,
        _ => Access::Execute,
    };
    let handler = *FAULT_HANDLER.lock();
    match handler.map_or(FaultResolution::Fail, |handler| handler(ipa, access)) {
        FaultResolution::Retry => false,
        FaultResolution::Skip => true,
        FaultResolution::Fail => {
            println!("unhandled {access:?} fault at IPA {ipa}");
            hypercall::exit(EXIT_STATUS_EXCEPTION)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn skip_everything(_: Ipa, _: Access) -> FaultResolution {
        FaultResolution::Skip
    }

    #[test]
    fn faults_go_to_the_handler() {
        // The host fake refuses the registration, but the handler is kept.
        assert_eq!(set_fault_handler(skip_everything), Err(Error::NotSupported));
        assert_eq!(dispatch(upcall::FAULT, [0x1000, 1, 0]), 1);
        assert_eq!(counts().fault, 1);
        assert!(!in_upcall());
        assert_eq!(dispatch(99, [0; 3]), 0, "unknown reasons are ignored");
    }

    static HANDLED: spin::Mutex<Vec<(u32, u64)>> = spin::Mutex::new(Vec::new());

    fn record(sender: crate::ipc::PartitionId, word: u64) {
        HANDLED.lock().push((sender.0, word));
    }

    #[test]
    fn messages_go_to_the_handler_or_wait_to_be_taken() {
        use crate::ipc;
        // One test, because the handler is global.
        assert_eq!(dispatch(upcall::MESSAGE, [2, 0xAB, 0]), 0);
        assert_eq!(ipc::take_message(), Some((ipc::PartitionId(2), 0xAB)));
        assert_eq!(ipc::take_message(), None);
        assert_eq!(
            ipc::set_message_handler(record),
            Err(Error::NotSupported),
            "the host fake refuses the registration, but the handler is kept"
        );
        dispatch(upcall::MESSAGE, [1, 7, 0]);
        dispatch(upcall::MESSAGE, [3, 8, 0]);
        assert_eq!(*HANDLED.lock(), [(1, 7), (3, 8)]);
        assert_eq!(ipc::take_message(), None);
        assert_eq!(ipc::messages_received(), 3);
        assert_eq!(counts().message, 3);
        assert!(!in_upcall());
    }
}
