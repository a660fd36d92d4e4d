//! A host stand-in for the machine layer, so the portable modules build and test with
//! `cargo test -p exo-libos`. It owns no guest memory and every hypercall fails with
//! `NOT_SUPPORTED`.

use exo_abi::{Error, Ipa, PhysAddr};

/// Issues a hypercall: on the host, always `NOT_SUPPORTED`.
pub(crate) fn hvc(_function: u32, _args: [u64; 6]) -> u64 {
    Error::NotSupported.to_register()
}

/// Issues a hypercall with several results: on the host, always `NOT_SUPPORTED`.
pub(crate) fn hvc4(_function: u32, _args: [u64; 6]) -> [u64; 4] {
    [Error::NotSupported.to_register(), 0, 0, 0]
}

/// Issues a hypercall with eight arguments and results: on the host, always
/// `NOT_SUPPORTED`.
pub(crate) fn hvc8(_function: u32, _args: [u64; 8]) -> [u64; 8] {
    let mut results = [0; 8];
    results[0] = Error::NotSupported.to_register();
    results
}

/// The IPA of a word buffer: on the host, its address.
pub(crate) fn ipa_of_words(words: &mut [u64]) -> Ipa {
    Ipa::new(words.as_mut_ptr() as u64)
}

/// The IPA of an array of frame addresses (its address, on the host).
pub(crate) fn ipa_of_frames(frames: &mut [PhysAddr]) -> Ipa {
    Ipa::new(frames.as_mut_ptr() as u64)
}

/// Writing an arbitrary address is not something the host stand-in can do: host tests must
/// not reach it, and fail loudly if they do.
pub(crate) fn write_u64(ipa: Ipa, _value: u64) {
    panic!("the host stand-in cannot write guest memory at {ipa:?}")
}

/// The host has no kernel pages.
pub(crate) fn copy_kernel_pages(_ipa: Ipa, _out: &mut [u8]) -> bool {
    false
}

/// A counter that never moves.
pub(crate) fn ticks() -> u64 {
    0
}

/// A made-up counter frequency.
pub(crate) fn tick_frequency() -> u64 {
    1_000_000
}

/// The host has no upcall entry.
pub(crate) fn upcall_entry() -> Ipa {
    Ipa::new(0)
}

/// The pointer at `ipa`: on the host, the address with exposed provenance (as on the
/// machine, where stage 1 is an identity map).
pub(crate) fn pointer_at(ipa: Ipa) -> *mut u8 {
    core::ptr::with_exposed_provenance_mut(ipa.raw() as usize)
}

/// The IPA of the byte `pointer` points at: on the host, its address.
pub(crate) fn ipa_at(pointer: *mut u8) -> Ipa {
    Ipa::new(pointer.expose_provenance() as u64)
}

/// The IPA of a byte of our memory: on the host, its address.
pub(crate) fn ipa_of(bytes: &[u8]) -> Ipa {
    Ipa::new(bytes.as_ptr() as u64)
}

/// The end of the program image: the host has none.
pub(crate) fn image_end() -> Ipa {
    Ipa::new(0)
}

/// Whether `[start, end)` overlaps the program image: the host has none.
pub(crate) fn overlaps_image(_start: Ipa, _end: Ipa) -> bool {
    false
}

/// Reading an arbitrary address is not something the host stand-in can do: host tests must
/// not reach it, and fail loudly if they do.
pub(crate) fn read_u64(ipa: Ipa) -> u64 {
    panic!("the host stand-in cannot read guest memory at {ipa:?}")
}

/// Free guest memory does not exist on the host.
pub(crate) fn claim(_start: Ipa, _end: Ipa) -> &'static mut [u8] {
    &mut []
}

/// Waits forever.
pub(crate) fn halt() -> ! {
    panic!("halted")
}

/// The host has no info page.
pub(crate) fn info_page() -> Option<&'static [u8; exo_abi::info::SIZE]> {
    None
}

/// The host was not entered by a kernel: no info page IPA.
pub(crate) fn info_page_ipa() -> Ipa {
    Ipa::new(0)
}

/// The host cannot fill machine registers: nothing to do.
pub(crate) fn spin_filled(_pattern: u64, _spins: u64) {}

/// The host has no machine registers to snapshot: all zero.
pub(crate) fn yield_and_snapshot(buffer: &mut [u64; 104]) {
    buffer.fill(0);
}

/// The host has no GIC system-register interface.
pub(crate) fn gic_system_registers_implemented() -> bool {
    false
}

/// Never reached on the host (no interface to enable): refuses.
pub(crate) fn enable_gic_system_registers() -> bool {
    false
}

/// Nothing to set up on the host.
pub(crate) fn gic_cpu_interface_setup() {}

/// Nothing is ever pending on the host.
pub(crate) fn acknowledge_interrupt() -> Option<u32> {
    None
}

/// Nothing to end on the host.
pub(crate) fn end_interrupt(_intid: u32) {}

/// The host stand-in never takes interrupts: always masked.
pub(crate) fn irqs_masked() -> bool {
    true
}

/// Nothing to mask on the host.
pub(crate) fn mask_irqs() {}

/// Nothing to unmask on the host.
pub(crate) fn unmask_irqs() {}

/// Returns at once: the host has nothing to wait for.
pub(crate) fn wait_for_interrupt() {}

/// The host has no timer to arm.
pub(crate) fn virtual_timer_arm(_deadline: u64) {}

/// The host has no timer to disable.
pub(crate) fn virtual_timer_disable() {}

/// Nothing can be pending on the host: returns at once.
pub(crate) fn take_pending_interrupts() {}

/// A register block on the host: zeroed memory of its own, leaked, so drivers' register
/// writes can be checked by host tests (a device that never changes anything by itself).
pub(crate) struct Mmio<T: 'static> {
    registers: &'static T,
}

impl<T> Mmio<T> {
    /// Fresh zeroed registers standing in for the region's (host tests only: a host build
    /// outside tests has no allocator, and no devices).
    ///
    /// # Safety
    ///
    /// None on the host (the registers are fresh memory); `unsafe` to match the machine's.
    pub(crate) unsafe fn new(_ipa: Ipa, bytes: u64) -> Self {
        assert!(core::mem::size_of::<T>() as u64 <= bytes);
        Self {
            registers: zeroed_registers(),
        }
    }
}

/// Leaked zeroed memory for a register block.
#[cfg(test)]
fn zeroed_registers<T>() -> &'static T {
    let layout = std::alloc::Layout::new::<T>();
    assert!(layout.size() > 0);
    // SAFETY: the layout has a non-zero size (asserted); the allocation is never freed, so
    // the reference is valid for `'static`; every register type is a `u32` cell, for which
    // all-zero bytes are a valid value.
    unsafe {
        let memory = std::alloc::alloc_zeroed(layout);
        assert!(!memory.is_null(), "out of host memory");
        &*(memory as *const T)
    }
}

/// Outside tests the host stand-in has no devices.
#[cfg(not(test))]
fn zeroed_registers<T>() -> &'static T {
    panic!("the host stand-in has no device registers")
}

impl<T> core::ops::Deref for Mmio<T> {
    type Target = T;

    fn deref(&self) -> &T {
        self.registers
    }
}

// SAFETY: the stand-in registers are `u32` cells in leaked memory, used by one test at a time
// through the owning driver.
unsafe impl<T> Send for Mmio<T> {}

/// Where the alias window starts (as on the target).
pub(crate) const ALIAS_BASE: u64 = 511 << 30;

/// The host has no stage 1 to change: host tests must not reach it.
pub(crate) fn map_alias(slot: usize, _ipa: Option<Ipa>) {
    panic!("the host stand-in has no stage-1 tables (alias slot {slot})")
}

/// The host has no cycle counter to read.
pub(crate) fn read_cycle_counter() -> u64 {
    0
}
