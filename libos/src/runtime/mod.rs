//! The runtime: what runs around the program, and the one layer the machine calls up into.
//!
//! The library OS is layered, each layer calling only those below it:
//!
//! 1. `arch`: the machine (vectors, entry, registers, MMIO, the hypercall instruction,
//!    stage-1 tables). It calls up only through [`hooks`].
//! 2. The runtime (this module): start-up, the [`hooks`] policies register with, per-vCPU
//!    state ([`PerVcpu`]), exception reports and the panic handler; with the thin kernel
//!    interface it needs (`hypercall`, `console`, `info`).
//! 3. Policy modules (`irq`, `upcall`, `mem`, `timer`, `time`, `ipc`, `device`, `mmu`, ...):
//!    they register their handlers with the runtime.
//! 4. The program, entered through [`entry!`](crate::entry).

pub(crate) mod hooks;
mod vcpu;

use core::sync::atomic::{AtomicBool, AtomicU64, Ordering};

pub(crate) use vcpu::PerVcpu;

use crate::arch::{self, Syndrome};
use crate::{EXIT_STATUS_EXCEPTION, EXIT_STATUS_NO_INFO, ExitCode, Info, hypercall, println};

/// The program's `main`, as [`entry!`](crate::entry) hands it to [`start`].
pub type Main = fn(&Info) -> ExitCode;

/// The counter frequency the info page gave; 0 if it gave none.
static COUNTER_FREQUENCY: AtomicU64 = AtomicU64::new(0);

/// Reads the info page, runs the program and exits with its status. Called by the program's
/// entry stub (which [`entry!`](crate::entry) defines and `_start` calls, on the boot stack
/// with `.bss` zeroed and the vector table installed). The info page is the one the kernel
/// passed at entry, whoever calls this.
#[doc(hidden)]
pub fn start(main: Main) -> ! {
    let Some(info) = arch::info_page().and_then(|page| Info::from_page(page)) else {
        println!("libos: no valid info page at IPA {}", arch::info_page_ipa());
        hypercall::exit(EXIT_STATUS_NO_INFO)
    };
    COUNTER_FREQUENCY.store(info.timer_frequency(), Ordering::Relaxed);
    let code = main(&info);
    hypercall::exit(code.status())
}

/// The system counter's frequency the info page gave, if it gave one.
pub(crate) fn counter_frequency() -> Option<u64> {
    match COUNTER_FREQUENCY.load(Ordering::Relaxed) {
        0 => None,
        hz => Some(hz),
    }
}

/// Set on a vCPU while it reports an exception, so a fault in the report itself exits at
/// once.
static IN_EXCEPTION: PerVcpu<AtomicBool> = PerVcpu::new([const { AtomicBool::new(false) }]);

/// Reports an exception taken to EL1 and exits with [`EXIT_STATUS_EXCEPTION`]. Runs on the
/// exception stack, from [`hooks::exception`].
#[cfg_attr(
    not(all(target_arch = "aarch64", target_os = "none")),
    allow(dead_code)
)]
fn exception(syndrome: Syndrome) -> ! {
    // This vCPU's flag, interrupts masked: no race between this load and store.
    let in_exception = IN_EXCEPTION.current();
    if in_exception.load(Ordering::Relaxed) {
        hypercall::exit(EXIT_STATUS_EXCEPTION)
    }
    in_exception.store(true, Ordering::Relaxed);
    let class = (syndrome.esr >> 26) & 0x3F;
    println!(
        "unhandled {} from {}: {} (EC {:#04x})",
        syndrome.slot.kind(),
        syndrome.slot.origin(),
        exception_class(class),
        class
    );
    println!(
        "  ESR_EL1={:#018x} FAR_EL1={:#018x} ELR_EL1={:#018x} SPSR_EL1={:#010x}",
        syndrome.esr, syndrome.far, syndrome.elr, syndrome.spsr
    );
    hypercall::exit(EXIT_STATUS_EXCEPTION)
}

/// An upcall arrived with no dispatcher registered (see [`hooks::upcall`]): says so and
/// exits with [`EXIT_STATUS_EXCEPTION`].
#[cfg_attr(
    not(all(target_arch = "aarch64", target_os = "none")),
    allow(dead_code)
)]
fn unexpected_upcall(reason: u64) -> ! {
    println!("libos: upcall (reason {reason}) with no upcall handler registered");
    hypercall::exit(EXIT_STATUS_EXCEPTION)
}

/// A name for an `ESR_ELx.EC` exception class (Arm ARM D19.2.37).
pub(crate) fn exception_class(class: u64) -> &'static str {
    match class {
        0x00 => "unknown reason",
        0x01 => "trapped WFI/WFE",
        0x07 => "FP/SIMD access trapped",
        0x0E => "illegal execution state",
        0x15 => "SVC",
        0x16 => "HVC",
        0x17 => "SMC",
        0x18 => "trapped MSR/MRS/system instruction",
        0x20 => "instruction abort from a lower EL",
        0x21 => "instruction abort",
        0x22 => "PC alignment fault",
        0x24 => "data abort from a lower EL",
        0x25 => "data abort",
        0x26 => "SP alignment fault",
        0x2C => "floating-point exception",
        0x2F => "SError",
        0x30 | 0x31 => "breakpoint",
        0x32 | 0x33 => "software step",
        0x34 | 0x35 => "watchpoint",
        0x3C => "BRK instruction",
        _ => "other exception",
    }
}

/// Prints `panicked at <file>:<line>:<col>: <message>` and exits with
/// [`EXIT_STATUS_PANIC`](exo_abi::call::EXIT_STATUS_PANIC).
#[cfg(all(target_os = "none", not(test)))]
#[panic_handler]
fn panic(panic: &core::panic::PanicInfo<'_>) -> ! {
    static PANICKING: AtomicBool = AtomicBool::new(false);
    if !PANICKING.load(Ordering::Relaxed) {
        PANICKING.store(true, Ordering::Relaxed);
        match panic.location() {
            Some(location) => println!("panicked at {location}: {}", panic.message()),
            None => println!("panicked: {}", panic.message()),
        }
    }
    hypercall::exit(exo_abi::call::EXIT_STATUS_PANIC)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn aborts_have_names() {
        assert_eq!(exception_class(0x25), "data abort");
        assert_eq!(exception_class(0x3F), "other exception");
    }
}
