//! Partitions' virtual CPUs as far as the portable kernel drives them (Hafnium's
//! `arch/cpu.h`).

use crate::mem::frame_table::PartitionId;

/// The architectural state of partitions' vCPUs the kernel does not keep itself.
pub trait VcpuControl {
    /// Processor state a vCPU starts in (EL1 with interrupts masked).
    fn initial_pstate(&self) -> u64;
    /// Partition `id`'s virtual-timer deadline in counter ticks, if its timer is enabled and
    /// unmasked (read live if its vCPU is loaded, else from its saved state).
    fn virtual_timer_deadline(&self, id: PartitionId) -> Option<u64>;
    /// Partition `id` has ended: if its vCPU is loaded, stop its timer and empty its
    /// virtual interface now (the CPU may idle before another vCPU is loaded).
    fn vcpu_ended(&mut self, id: PartitionId);
}
