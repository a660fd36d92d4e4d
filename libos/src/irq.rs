//! Interrupts at EL1: the GICv3 virtual CPU interface, a small table of handlers and the
//! dispatcher the IRQ vector runs.
//!
//! The kernel injects a partition's interrupts through the GICv3 list registers
//! (`ICH_LR<n>_EL2`); with `HCR_EL2.IMO` set, the `ICC_*` registers the library OS uses reach
//! the virtual CPU interface (`ICV_*`). The sequence is:
//!
//! 1. [`init`]: enable the system-register interface and open the CPU interface to every
//!    Group 1 priority. Fails with [`Error`] where there is no GICv3 interface (on a GICv2,
//!    whose virtual CPU interface is a memory-mapped frame this library does not drive).
//! 2. [`register`] a handler per INTID (the virtual timer's is [`crate::timer`]'s).
//! 3. [`enable`]: unmask IRQs at EL1 (`PSTATE.I`). Partitions start with them masked.
//!
//! The dispatcher acknowledges interrupts (`ICC_IAR1_EL1`) until the spurious INTID 1023,
//! runs each one's handler and ends it (`ICC_EOIR1_EL1`). Handlers run in the IRQ vector on
//! the interrupted stack with IRQs masked: they must be short, must not wait for anything
//! the interrupted code might hold, and must silence a level-sensitive source (move a timer
//! deadline forward, say) before they return. They may print.
//!
//! Upcalls run with IRQs masked too, and the upcall entry never unmasks them, so interrupts
//! and upcalls never run inside each other.

use core::fmt;
use core::sync::atomic::{AtomicBool, AtomicU64, Ordering};

use spin::Mutex;

use crate::arch;

/// The spurious INTID `ICC_IAR1_EL1` returns when nothing is pending (IHI 0069 §2.2.1).
pub const SPURIOUS: u32 = 1023;
/// How many INTIDs can have a handler at once.
pub const HANDLER_SLOTS: usize = 8;

/// An interrupt handler: runs in the IRQ vector with IRQs masked.
pub type Handler = fn();

/// Why interrupts cannot be used.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Error {
    /// The PE has no GIC system-register interface (`ID_AA64PFR0_EL1.GIC == 0`): a GICv2
    /// system, or no GIC at all.
    NoSystemRegisterInterface,
    /// `ICC_SRE_EL1.SRE` reads back 0 after being set: only the memory-mapped interface is
    /// offered.
    SystemRegisterInterfaceDisabled,
    /// [`init`] has not succeeded yet.
    NotInitialised,
    /// Every handler slot is taken.
    TableFull,
    /// Not an INTID a handler can be registered for (1020..=1023 are special).
    InvalidIntid,
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Error::NoSystemRegisterInterface => {
                "the CPU has no GIC system-register interface (ID_AA64PFR0_EL1.GIC == 0)"
            }
            Error::SystemRegisterInterfaceDisabled => "ICC_SRE_EL1.SRE does not read back 1",
            Error::NotInitialised => "interrupts are not initialised",
            Error::TableFull => "every interrupt handler slot is taken",
            Error::InvalidIntid => "not a valid INTID",
        })
    }
}

/// The handler table: INTID and handler per slot.
type Table = [Option<(u32, Handler)>; HANDLER_SLOTS];

static HANDLERS: Mutex<Table> = Mutex::new([None; HANDLER_SLOTS]);
static INITIALISED: AtomicBool = AtomicBool::new(false);
static HANDLED: AtomicU64 = AtomicU64::new(0);
static UNHANDLED: AtomicU64 = AtomicU64::new(0);

/// Sets up the GICv3 virtual CPU interface: `ICC_SRE_EL1.SRE = 1` (checked by reading it
/// back), `ICC_PMR_EL1 = 0xFF`, `ICC_BPR1_EL1 = 0`, `ICC_IGRPEN1_EL1 = 1`. IRQs stay masked
/// until [`enable`].
pub fn init() -> Result<(), Error> {
    if !arch::gic_system_registers_implemented() {
        return Err(Error::NoSystemRegisterInterface);
    }
    if !arch::enable_gic_system_registers() {
        return Err(Error::SystemRegisterInterfaceDisabled);
    }
    arch::gic_cpu_interface_setup();
    INITIALISED.store(true, Ordering::Release);
    Ok(())
}

/// Whether [`init`] has succeeded.
pub fn is_initialised() -> bool {
    INITIALISED.load(Ordering::Acquire)
}

/// Runs `handler` for every interrupt `intid` from now on, replacing any handler it had.
pub fn register(intid: u32, handler: Handler) -> Result<(), Error> {
    if intid >= 1020 {
        return Err(Error::InvalidIntid);
    }
    without_interrupts(|| insert(&mut HANDLERS.lock(), intid, handler))
}

/// Removes the handler of `intid`, if any; its interrupts are then only counted.
pub fn unregister(intid: u32) {
    without_interrupts(|| {
        for slot in HANDLERS.lock().iter_mut() {
            if slot.is_some_and(|(registered, _)| registered == intid) {
                *slot = None;
            }
        }
    });
}

fn insert(table: &mut Table, intid: u32, handler: Handler) -> Result<(), Error> {
    if let Some(slot) = table
        .iter_mut()
        .find(|slot| slot.is_some_and(|(registered, _)| registered == intid))
    {
        *slot = Some((intid, handler));
        return Ok(());
    }
    let free = table
        .iter_mut()
        .find(|slot| slot.is_none())
        .ok_or(Error::TableFull)?;
    *free = Some((intid, handler));
    Ok(())
}

fn lookup(table: &Table, intid: u32) -> Option<Handler> {
    table
        .iter()
        .flatten()
        .find(|(registered, _)| *registered == intid)
        .map(|&(_, handler)| handler)
}

/// Unmasks IRQs at EL1. Refused until [`init`] has succeeded: the dispatcher must be able
/// to acknowledge what arrives.
pub fn enable() -> Result<(), Error> {
    if !is_initialised() {
        return Err(Error::NotInitialised);
    }
    arch::unmask_irqs();
    Ok(())
}

/// Masks IRQs at EL1.
pub fn disable() {
    arch::mask_irqs();
}

/// Whether IRQs are unmasked at EL1.
pub fn enabled() -> bool {
    !arch::irqs_masked()
}

/// Runs `f` with IRQs masked, restoring the previous mask afterwards.
pub fn without_interrupts<T>(f: impl FnOnce() -> T) -> T {
    let was_masked = arch::irqs_masked();
    arch::mask_irqs();
    let result = f();
    if !was_masked {
        arch::unmask_irqs();
    }
    result
}

/// Waits (`WFI`) until an interrupt is pending. The kernel does not trap `WFI`: the partition
/// idles the rest of its time slice. With IRQs unmasked the handler has run when this
/// returns; with them masked it returns with the interrupt still pending.
pub fn wait_for_interrupt() {
    arch::wait_for_interrupt();
}

/// Interrupts dispatched so far: `(handled, unhandled)`, the latter having no handler.
pub fn counts() -> (u64, u64) {
    (
        HANDLED.load(Ordering::Relaxed),
        UNHANDLED.load(Ordering::Relaxed),
    )
}

/// The dispatcher: called by the IRQ vector with IRQs masked.
#[cfg_attr(
    not(all(target_arch = "aarch64", target_os = "none")),
    allow(dead_code)
)]
pub(crate) fn dispatch() {
    dispatch_with(&HANDLERS, arch::acknowledge_interrupt, arch::end_interrupt);
}

/// Acknowledges interrupts with `acknowledge` until it reports none, runs each one's handler
/// from `table` (outside the lock, so a handler may register others) and ends it with `end`.
/// An interrupt without a handler is counted and ended.
fn dispatch_with(
    table: &Mutex<Table>,
    mut acknowledge: impl FnMut() -> Option<u32>,
    mut end: impl FnMut(u32),
) {
    while let Some(intid) = acknowledge() {
        if intid == SPURIOUS {
            break;
        }
        let handler = lookup(&table.lock(), intid);
        match handler {
            Some(handler) => {
                HANDLED.fetch_add(1, Ordering::Relaxed);
                handler();
            }
            None => {
                UNHANDLED.fetch_add(1, Ordering::Relaxed);
            }
        }
        end(intid);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::cell::RefCell;
    use std::sync::atomic::AtomicU32;

    static FIRST: AtomicU32 = AtomicU32::new(0);
    static SECOND: AtomicU32 = AtomicU32::new(0);

    fn first() {
        FIRST.fetch_add(1, Ordering::Relaxed);
    }

    fn second() {
        SECOND.fetch_add(1, Ordering::Relaxed);
    }

    static REPLACED: AtomicU32 = AtomicU32::new(0);

    fn replaced() {
        REPLACED.fetch_add(1, Ordering::Relaxed);
    }

    #[test]
    fn host_has_no_gicv3() {
        assert_eq!(init(), Err(Error::NoSystemRegisterInterface));
        assert_eq!(enable(), Err(Error::NotInitialised));
        assert!(
            Error::SystemRegisterInterfaceDisabled
                .to_string()
                .contains("ICC_SRE_EL1")
        );
    }

    #[test]
    fn special_intids_are_refused() {
        assert_eq!(register(1023, first), Err(Error::InvalidIntid));
        assert_eq!(register(1020, first), Err(Error::InvalidIntid));
    }

    #[test]
    fn table_replaces_and_fills_up() {
        let mut table: Table = [None; HANDLER_SLOTS];
        insert(&mut table, 27, first).unwrap();
        insert(&mut table, 27, replaced).unwrap();
        assert_eq!(table.iter().flatten().count(), 1);
        lookup(&table, 27).expect("registered")();
        assert_eq!(REPLACED.load(Ordering::Relaxed), 1);
        for intid in 0..HANDLER_SLOTS as u32 - 1 {
            insert(&mut table, 100 + intid, first).unwrap();
        }
        assert_eq!(insert(&mut table, 999, first), Err(Error::TableFull));
        assert!(lookup(&table, 5).is_none());
    }

    #[test]
    fn dispatcher_acknowledges_until_spurious_and_ends_each() {
        let mut entries: Table = [None; HANDLER_SLOTS];
        insert(&mut entries, 27, first).unwrap();
        insert(&mut entries, 30, second).unwrap();
        let table = Mutex::new(entries);
        let pending = RefCell::new(vec![27, 31, 30, 27, SPURIOUS, 27]);
        let mut ended = Vec::new();
        let (first_before, second_before) = (
            FIRST.load(Ordering::Relaxed),
            SECOND.load(Ordering::Relaxed),
        );
        dispatch_with(
            &table,
            || {
                let mut pending = pending.borrow_mut();
                (!pending.is_empty()).then(|| pending.remove(0))
            },
            |intid| ended.push(intid),
        );
        assert_eq!(ended, [27, 31, 30, 27]);
        assert_eq!(*pending.borrow(), [27]);
        assert_eq!(FIRST.load(Ordering::Relaxed) - first_before, 2);
        assert_eq!(SECOND.load(Ordering::Relaxed) - second_before, 1);
        assert!(counts().1 >= 1);
    }
}
