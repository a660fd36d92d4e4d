//! exo: an exokernel for AArch64 at EL2, after Engler, Kaashoek and O'Toole (SOSP 1995).
//!
//! The kernel multiplexes hardware securely and nothing more: it hands physical frames to
//! library OSes as stage-2 bindings, checks authority once at bind time, and leaves every
//! policy to the library OS running at EL1 in each partition.
//!
//! Layout: portable logic ([`mem`], [`kernel`], [`partition`], [`console`], [`boot_info`],
//! [`cpus`], [`device_tree`], [`gicd_filter`], [`linux`]) is plain Rust tested on the host; [`arch`]
//! holds what knows the machine and implements the per-concern traits of [`platform`] for
//! it.

#![cfg_attr(not(test), no_std)]

pub mod arch;
pub mod boot_info;
pub mod console;
pub mod cpus;
pub mod device_tree;
pub mod drivers;
pub mod gicd_filter;
pub mod irq;
pub mod kernel;
pub mod linux;
pub mod mem;
pub mod partition;
pub mod platform;
pub mod vcpu;

#[cfg(all(target_arch = "aarch64", target_os = "none"))]
mod panic;
