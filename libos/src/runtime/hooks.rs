//! The hooks: the one way the machine layer (`arch`) calls up into the library OS.
//!
//! `arch` owns the entries the hardware and the kernel jump to (the exception vectors, the
//! IRQ vector, the upcall stub) but decides nothing there: each hands what it read up to a
//! function of this module. What runs then is registered here by the layer that owns the
//! policy, once, when it sets itself up:
//!
//! | Entry | Registered by | With |
//! |---|---|---|
//! | IRQ vector | `irq::init` | [`set_irq_handler`] |
//! | upcall stub | `upcall::register` | [`set_upcall_handler`] |
//! | every other vector | (fixed) | the runtime's exception report |
//!
//! So the arrows point one way: `arch` names this module and nothing else of the crate; the
//! policy modules name the runtime; the runtime names neither of them.
//!
//! The table is global: every vCPU of a partition runs the same handlers (which keep their
//! per-vCPU state in [`PerVcpu`](super::PerVcpu)). A slot is written once and only read
//! after, without a lock, so an IRQ or an upcall never waits on a registration.

use spin::Once;

use crate::arch::Syndrome;

/// An interrupt dispatcher: runs in the IRQ vector, on the interrupted stack, IRQs masked.
pub(crate) type IrqHandler = fn();

/// An upcall dispatcher: gets the reason (`x0`) and values (`x1`..`x3`), runs on the upcall
/// stack with IRQs masked, and returns the `skip` flag for `EXO_UPCALL_RETURN`.
pub(crate) type UpcallHandler = fn(u64, [u64; 3]) -> u64;

/// The handlers the machine layer's entries run, one slot per entry.
pub(crate) struct Hooks {
    irq: Once<IrqHandler>,
    upcall: Once<UpcallHandler>,
}

impl Hooks {
    /// No handlers registered.
    pub(crate) const fn new() -> Self {
        Self {
            irq: Once::new(),
            upcall: Once::new(),
        }
    }

    /// Registers the interrupt dispatcher; `false` (and the first one stays) if one is
    /// registered already.
    pub(crate) fn set_irq_handler(&self, handler: IrqHandler) -> bool {
        register(&self.irq, handler)
    }

    /// Registers the upcall dispatcher; `false` (and the first one stays) if one is
    /// registered already.
    pub(crate) fn set_upcall_handler(&self, handler: UpcallHandler) -> bool {
        register(&self.upcall, handler)
    }

    /// Runs the interrupt dispatcher. None registered: nothing to do (IRQs are unmasked only
    /// by `irq`, after it registered, so no interrupt is taken before).
    pub(crate) fn irq(&self) {
        if let Some(handler) = self.irq.get() {
            handler();
        }
    }

    /// Runs the upcall dispatcher; `None` if none is registered.
    pub(crate) fn upcall(&self, reason: u64, values: [u64; 3]) -> Option<u64> {
        self.upcall.get().map(|handler| handler(reason, values))
    }
}

/// Fills `slot` with `handler` unless it is filled; whether it was empty.
fn register<T>(slot: &Once<T>, handler: T) -> bool {
    let mut fresh = false;
    slot.call_once(|| {
        fresh = true;
        handler
    });
    fresh
}

/// The partition's hooks.
static HOOKS: Hooks = Hooks::new();

/// Registers the interrupt dispatcher the IRQ vector runs (`irq` does, at `init`). Later
/// registrations are ignored: `false`.
pub(crate) fn set_irq_handler(handler: IrqHandler) -> bool {
    HOOKS.set_irq_handler(handler)
}

/// Registers the upcall dispatcher the upcall stub runs (`upcall` does, before it gives the
/// kernel the stub's address). Later registrations are ignored: `false`.
pub(crate) fn set_upcall_handler(handler: UpcallHandler) -> bool {
    HOOKS.set_upcall_handler(handler)
}

/// From the IRQ vector: runs the registered interrupt dispatcher.
#[cfg_attr(
    not(all(target_arch = "aarch64", target_os = "none")),
    allow(dead_code)
)]
pub(crate) fn irq() {
    HOOKS.irq();
}

/// From the upcall stub: runs the registered upcall dispatcher and returns its `skip` flag.
/// The kernel learns the stub's address only after a dispatcher registered, so an upcall
/// without one is a library OS bug: reported, and the partition exits.
#[cfg_attr(
    not(all(target_arch = "aarch64", target_os = "none")),
    allow(dead_code)
)]
pub(crate) fn upcall(reason: u64, values: [u64; 3]) -> u64 {
    match HOOKS.upcall(reason, values) {
        Some(skip) => skip,
        None => super::unexpected_upcall(reason),
    }
}

/// From every vector but the IRQ one, on the exception stack: reports and exits.
#[cfg_attr(
    not(all(target_arch = "aarch64", target_os = "none")),
    allow(dead_code)
)]
pub(crate) fn exception(syndrome: Syndrome) -> ! {
    super::exception(syndrome)
}

#[cfg(test)]
mod tests {
    use super::*;
    use core::sync::atomic::{AtomicU64, Ordering};

    static IRQS: AtomicU64 = AtomicU64::new(0);

    fn count_irq() {
        IRQS.fetch_add(1, Ordering::Relaxed);
    }

    fn other_irq() {
        IRQS.fetch_add(100, Ordering::Relaxed);
    }

    fn skip_odd(reason: u64, values: [u64; 3]) -> u64 {
        (reason + values[0]) % 2
    }

    fn never_skip(_: u64, _: [u64; 3]) -> u64 {
        0
    }

    #[test]
    fn entries_run_what_was_registered_first() {
        let hooks = Hooks::new();
        hooks.irq();
        assert_eq!(IRQS.load(Ordering::Relaxed), 0, "no handler: nothing runs");
        assert_eq!(hooks.upcall(1, [0; 3]), None);

        assert!(hooks.set_irq_handler(count_irq));
        assert!(!hooks.set_irq_handler(other_irq), "the first handler stays");
        hooks.irq();
        hooks.irq();
        assert_eq!(IRQS.load(Ordering::Relaxed), 2);

        assert!(hooks.set_upcall_handler(skip_odd));
        assert!(!hooks.set_upcall_handler(never_skip));
        assert_eq!(hooks.upcall(1, [2, 0, 0]), Some(1));
        assert_eq!(hooks.upcall(1, [1, 0, 0]), Some(0));
    }
}
