//! Start-up, exception reporting and the panic handler: what runs around the program.

use core::sync::atomic::{AtomicBool, Ordering};

use exo_abi::Ipa;

use crate::arch::{self, Syndrome};
use crate::{EXIT_STATUS_EXCEPTION, EXIT_STATUS_NO_INFO, Info, hypercall, println};

/// Reads the info page, runs the program and exits with its status. Called by `_start` on
/// the boot stack with `.bss` zeroed and the vector table installed.
#[cfg_attr(
    not(all(target_arch = "aarch64", target_os = "none")),
    allow(dead_code)
)]
pub(crate) fn start(info_ipa: Ipa) -> ! {
    let Some(info) = arch::info_page(info_ipa).and_then(|page| Info::from_page(page)) else {
        println!("libos: no valid info page at IPA {info_ipa}");
        hypercall::exit(EXIT_STATUS_NO_INFO)
    };
    crate::time::set_frequency(info.timer_frequency());
    let code = arch::guest_main(&info);
    hypercall::exit(code.status())
}

/// Set while an exception is being reported, so a fault in the report itself exits at once.
static IN_EXCEPTION: AtomicBool = AtomicBool::new(false);

/// Reports an exception taken to EL1 and exits with [`EXIT_STATUS_EXCEPTION`]. Runs on the
/// exception stack.
#[cfg_attr(
    not(all(target_arch = "aarch64", target_os = "none")),
    allow(dead_code)
)]
pub(crate) fn exception(syndrome: Syndrome) -> ! {
    // One vCPU, interrupts masked: no race between this load and store.
    if IN_EXCEPTION.load(Ordering::Relaxed) {
        hypercall::exit(EXIT_STATUS_EXCEPTION)
    }
    IN_EXCEPTION.store(true, Ordering::Relaxed);
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
