//! Per-vCPU state: the place for what each vCPU of a partition must keep for itself (whether
//! it is inside an upcall, or reporting an exception), as opposed to what the partition
//! shares (handlers, the frame table, stage 1).
//!
//! A partition runs on one vCPU today, so there is one slot and [`PerVcpu::current`] is
//! always it. When the library OS runs on several, the slots grow to the partition's vCPU
//! count and `current` picks the caller's by the vCPU number the entry stub records
//! (`TPIDR_EL1`, say); nothing that uses a `PerVcpu` has to change.

/// Most vCPUs a partition's library OS keeps state for.
pub(crate) const MAX_VCPUS: usize = 1;

/// One `T` per vCPU.
pub(crate) struct PerVcpu<T> {
    slots: [T; MAX_VCPUS],
}

impl<T> PerVcpu<T> {
    /// A value per vCPU, as given.
    pub(crate) const fn new(slots: [T; MAX_VCPUS]) -> Self {
        Self { slots }
    }

    /// The calling vCPU's value.
    pub(crate) fn current(&self) -> &T {
        &self.slots[current_vcpu()]
    }
}

/// The calling vCPU's number: 0, the only one, until the library OS runs on several.
fn current_vcpu() -> usize {
    0
}
