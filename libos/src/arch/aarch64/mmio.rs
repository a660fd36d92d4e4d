//! Memory-mapped device registers: the one way from a device IPA to a reference to a typed
//! register block (Tock's `StaticRef`). Who may drive which registers is decided above this
//! layer (`crate::device` hands each device region out once); this module only turns that
//! right into a reference.

use exo_abi::Ipa;

/// A typed register block of a device bound in stage 2 as Device memory.
pub(crate) struct Mmio<T: 'static> {
    registers: &'static T,
}

impl<T> Mmio<T> {
    /// The register block at `ipa`, in a device region of `bytes` bytes.
    ///
    /// Panics if `T` does not fit in the region or `ipa` is not aligned for `T`.
    ///
    /// # Safety
    ///
    /// `[ipa, ipa + bytes)` is bound in stage 2 as Device memory for the life of the
    /// partition and holds no Rust object, so a `&'static T` to it aliases nothing Rust owns.
    /// (Two `Mmio`s of one region would still be sound, `T` being made of cells accessed with
    /// volatile loads and stores, but would break a driver's ownership of its device: make
    /// one per claimed region.)
    pub(crate) unsafe fn new(ipa: Ipa, bytes: u64) -> Self {
        let base = ipa.raw();
        assert!(
            core::mem::size_of::<T>() as u64 <= bytes
                && base.is_multiple_of(core::mem::align_of::<T>() as u64),
            "a register block must fit its device region"
        );
        // SAFETY: the caller guarantees a Device binding at this IPA for the life of the
        // partition, outside every Rust object; `T` fits and is aligned (asserted above). The
        // register types are `UnsafeCell`-based and accessed only with volatile loads and
        // stores, so the device changing them behind our back, or another reference to them,
        // does not break Rust's rules. Stage 1 maps the IPA to itself; stage 2 makes the
        // accesses Device-nGnRE.
        let registers = unsafe { &*(base as *const T) };
        Self { registers }
    }
}

impl<T> core::ops::Deref for Mmio<T> {
    type Target = T;

    fn deref(&self) -> &T {
        self.registers
    }
}

// SAFETY: device registers are reachable from any context of the partition's vCPU; whoever
// owns the `Mmio` (a driver, usually behind a lock) provides exclusive use. (Multi-vCPU: a
// GICv2 `GICV` frame is banked per CPU at one IPA, so one `Mmio` reaches the calling vCPU's.)
unsafe impl<T> Send for Mmio<T> {}
