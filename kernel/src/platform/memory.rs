//! Physical memory and the stage-2 translation hardware (Hafnium's `arch/mm.h`).

use crate::mem::stage2::{DescriptorFormat, TlbMaintenance};
use exo_abi::PhysAddr;

/// Reading and writing physical memory the kernel owns or loads.
pub trait PhysicalMemory {
    /// Reads a 64-bit word of physical memory.
    fn read_u64(&self, pa: PhysAddr) -> u64;
    /// Writes a 64-bit word of physical memory.
    fn write_u64(&mut self, pa: PhysAddr, value: u64);
    /// Fills a frame with zeroes.
    fn zero_frame(&mut self, frame: PhysAddr);
    /// Copies bytes into physical memory (within one frame).
    fn copy_to_phys(&mut self, pa: PhysAddr, bytes: &[u8]);
    /// Copies bytes out of physical memory (within one frame).
    fn copy_from_phys(&self, pa: PhysAddr, buffer: &mut [u8]);
}

/// The stage-2 translation hardware: how descriptors are encoded and how its TLBs are
/// maintained.
pub trait Stage2Hardware {
    /// Stage-2 descriptor encoding.
    type Format: DescriptorFormat;
    /// Stage-2 TLB maintenance.
    type Tlb: TlbMaintenance;
    /// A handle for stage-2 TLB maintenance.
    fn tlb(&self) -> Self::Tlb;
}
