//! AArch64 EL1 machine layer: the ground floor of the library OS. It holds the boot stub,
//! the exception vectors, the upcall entry, the raw hypercall instruction, system-register
//! access, MMIO and stage-1 table writes, and calls nothing above it but the runtime's hooks
//! (`crate::runtime::hooks`); `libos/tests/layers.rs` checks that.
//!
//! The kernel enters the image at `_start` at EL1 with the stage-1 MMU off. The first thing
//! the boot stub does is turn it on, with [`STAGE1`]: an identity map of the whole 39-bit
//! IPA space as Normal write-back memory (stage 2 makes device regions Device whatever
//! stage 1 says, and decides every permission). So a virtual address *is* an IPA: pointers
//! and IPAs convert by identity here ([`memory`]) and nowhere else.

mod counter;
mod cpu;
mod entry;
mod gic;
mod hypercall;
mod memory;
mod mmio;
mod register_probes;
mod stage1;
mod upcall;
mod vectors;

pub(crate) use counter::*;
pub(crate) use cpu::*;
pub(crate) use entry::info_page_ipa;
pub(crate) use gic::*;
pub(crate) use hypercall::*;
pub(crate) use memory::*;
pub(crate) use mmio::*;
pub(crate) use register_probes::*;
pub(crate) use stage1::*;
pub(crate) use upcall::*;
