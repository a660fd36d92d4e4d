//! AArch64 (ARMv8-A, running at EL2 without VHE): boot, exception vectors, system registers,
//! the EL2 stage-1 map, stage-2 hardware control and descriptor formats.
//!
//! `esr` and `stage2_format` are pure bit manipulation and compile (and are tested) on the
//! host; everything that executes AArch64 instructions is built only for bare metal.

pub mod esr;
pub mod list_register;
pub mod stage2_format;

#[cfg(all(target_arch = "aarch64", target_os = "none"))]
mod boot;
#[cfg(all(target_arch = "aarch64", target_os = "none"))]
mod cores;
#[cfg(all(target_arch = "aarch64", target_os = "none"))]
mod el2;
#[cfg(all(target_arch = "aarch64", target_os = "none"))]
mod exceptions;
#[cfg(all(target_arch = "aarch64", target_os = "none"))]
mod gic;
#[cfg(all(target_arch = "aarch64", target_os = "none"))]
mod linux_trap;
#[cfg(all(target_arch = "aarch64", target_os = "none"))]
mod mmu;
#[cfg(all(target_arch = "aarch64", target_os = "none"))]
mod platform;
#[cfg(all(target_arch = "aarch64", target_os = "none"))]
mod start;
#[cfg(all(target_arch = "aarch64", target_os = "none"))]
mod trap;
#[cfg(all(target_arch = "aarch64", target_os = "none"))]
mod vcpu_state;

#[cfg(all(target_arch = "aarch64", target_os = "none"))]
pub use el2::system_off as power_off;
#[cfg(all(target_arch = "aarch64", target_os = "none"))]
pub use platform::write_console_forced;
