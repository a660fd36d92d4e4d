//! SMCCC function identifiers understood by the exo kernel.
//!
//! A library OS issues `HVC #0` (or `SMC #0`, which the kernel traps) with the function
//! identifier in `w0` and arguments in `x1`..`x7`, per the SMC Calling Convention (Arm DEN 0028,
//! SMCCC 1.1 and later). Results come back in `x0`..`x3`; `x0` is a non-negative value on
//! success or a negative [`crate::Error`] code. Registers `x4`..`x17` are preserved unless a
//! call says otherwise.
//!
//! exo's own calls are Fast calls in the SMC64 range of the *Vendor Specific Hypervisor
//! Service* owning entity (OEN 6): identifiers `0xC600_0000 | n`.

pub use smccc::arch::{SMCCC_ARCH_FEATURES, SMCCC_VERSION};
pub use smccc::psci::{
    PSCI_CPU_OFF, PSCI_FEATURES, PSCI_SYSTEM_OFF, PSCI_SYSTEM_RESET, PSCI_VERSION,
};

/// SMCCC version the kernel implements (1.1), as returned by [`SMCCC_VERSION`].
pub const SMCCC_IMPLEMENTED_VERSION: u64 = 0x0001_0001;
/// PSCI version the kernel implements for partitions (1.1), as returned by [`PSCI_VERSION`].
pub const PSCI_IMPLEMENTED_VERSION: u64 = 0x0001_0001;

/// Function-identifier bit 31: a Fast call.
const FAST: u32 = 1 << 31;
/// Function-identifier bit 30: the SMC64 calling convention.
const SMC64: u32 = 1 << 30;
/// Owning entity number of the Vendor Specific Hypervisor Service, in bits 29:24.
const OEN_VENDOR_HYP: u32 = 6 << 24;

/// Builds the identifier of exo function `number`.
pub const fn exo_call(number: u16) -> u32 {
    FAST | SMC64 | OEN_VENDOR_HYP | number as u32
}

/// Whether `function` lies in exo's vendor hypervisor range.
pub const fn is_exo_call(function: u32) -> bool {
    function & 0xFFFF_0000 == exo_call(0)
}

/// `EXO_ABI_VERSION() -> version`: the [`crate::ABI_VERSION`] the kernel speaks.
pub const EXO_ABI_VERSION: u32 = exo_call(0x00);

/// `EXO_CONSOLE_WRITE(ipa, len) -> bytes_written`: writes `len` bytes (at most
/// [`CONSOLE_WRITE_MAX`]) from the caller's memory at `ipa` to the system console, prefixed
/// with the partition's name at the start of each line. The buffer must be bound readable.
/// Errors: [`crate::Error::TooLarge`], [`crate::Error::BadAddress`].
pub const EXO_CONSOLE_WRITE: u32 = exo_call(0x01);

/// `EXO_YIELD() -> 0`: gives the CPU to the next runnable partition. Returns when the caller
/// is scheduled again.
pub const EXO_YIELD: u32 = exo_call(0x02);

/// `EXO_EXIT(status) -> !`: ends the calling partition. Status 0 is success; anything else
/// is failure and is reported by the kernel and by `scripts/run`.
pub const EXO_EXIT: u32 = exo_call(0x03);

// ---------------------------------------------------------------------------------------
// Memory: allocation, binding, sharing and revocation (ABI 1.1).
//
// Frames are named by their physical address. A partition *holds* a frame when the frame
// table says it owns it; it may *bind* a frame it holds (or one granted to it) at an IPA of
// its choosing. Holding up to the partition's guarantee is never revoked; frames held beyond
// it are borrowed and may be asked back (see `crate::revocation`).

/// `EXO_FRAME_ALLOC(count, buffer_ipa) -> count`: allocates `count` (1..=[`FRAME_ALLOC_MAX`])
/// free frames, zeroed, and writes their physical addresses as little-endian `u64`s to the
/// caller's memory at `buffer_ipa` (bound writable). All or nothing.
/// Within its guarantee a caller is never refused for lack of free frames: the kernel asks
/// borrowers to give frames back and the call returns once they have (or were aborted).
/// Errors: `InvalidParameter` (count), `BadAddress` (buffer), `QuotaExhausted` (beyond
/// guarantee + borrow limit), `OutOfMemory` (borrowing, and no free frame).
pub const EXO_FRAME_ALLOC: u32 = exo_call(0x10);

/// `EXO_FRAME_ALLOC_AT(phys) -> phys`: allocates the named frame, zeroed, if it is free.
/// Errors: `Unaligned`, `NotRam`, `KernelMemory`, `OtherPartition`, `Busy` (already the
/// caller's), `QuotaExhausted`.
pub const EXO_FRAME_ALLOC_AT: u32 = exo_call(0x11);

/// `EXO_FRAME_FREE(phys) -> 0`: gives a held frame back. It must not be bound in the caller;
/// grants of it to other partitions are revoked first. The frame is scrubbed. Frames freed
/// while a revocation request is pending count towards it.
/// Errors: `Unaligned`, `NotRam`, `NotOwner`/`KernelMemory`/`OtherPartition`, `Busy`.
pub const EXO_FRAME_FREE: u32 = exo_call(0x12);

/// `EXO_BIND(phys, ipa, attributes) -> 0`: binds a frame the caller holds, or one granted
/// to it, at `ipa` with [`bind`] attributes. Authority is checked here, once; afterwards only
/// the stage-2 MMU enforces it. A frame is bound at most once per partition.
/// Errors: `Unaligned`, `InvalidParameter` (attributes), `IpaOutOfRange` (outside the IPA
/// space or in the kernel's window below [`crate::package::DEFAULT_RAM_BASE`]), `Overlap`,
/// `NotRam`, `NotOwner`/`KernelMemory`/`OtherPartition` (neither held nor granted), `Denied`
/// (rights beyond the grant), `Busy` (already bound in the caller), `OutOfMemory` (tables).
pub const EXO_BIND: u32 = exo_call(0x13);

/// `EXO_UNBIND(ipa) -> phys`: removes the caller's binding at `ipa` (TLBs invalidated
/// before return) and returns the frame it named. Kernel pages cannot be unbound.
/// Errors: `Unaligned`, `IpaOutOfRange`, `BadAddress` (nothing bound), `Denied` (a device
/// binding from the configuration).
pub const EXO_UNBIND: u32 = exo_call(0x14);

/// `EXO_GRANT(phys, partition, rights) -> 0`: lets `partition` (an id) bind a frame the
/// caller holds, read-only (`bind::READ`) or read-write (`bind::READ | bind::WRITE`).
/// Errors: `NotOwner`/..., `UnknownPartition` (no such partition, or the caller),
/// `InvalidParameter` (rights), `Busy` (already granted to it).
pub const EXO_GRANT: u32 = exo_call(0x15);

/// `EXO_GRANT_REVOKE(phys, partition) -> 0`: withdraws a grant; every binding of the frame
/// in `partition` is broken and reported in its repossession vector.
/// Errors: `NotOwner`/..., `UnknownPartition`, `BadAddress` (no such grant).
pub const EXO_GRANT_REVOKE: u32 = exo_call(0x16);

/// `EXO_REVOKE_ACK() -> frames_still_owed`: the library OS has released what it chose to
/// release for the pending request in its revocation page. 0 means the request is met.
pub const EXO_REVOKE_ACK: u32 = exo_call(0x17);

/// `EXO_SET_UPCALL(entry_ipa, flags) -> 0`: registers the library OS's upcall entry point
/// (0 to disable). With [`UPCALL_FLAG_FAULTS`], stage-2 faults on unbound IPAs are reflected
/// to it instead of stopping the partition. See [`upcall`].
/// Errors: `IpaOutOfRange`, `InvalidParameter` (flags).
pub const EXO_SET_UPCALL: u32 = exo_call(0x18);

/// `EXO_UPCALL_RETURN(skip) -> !`: ends an upcall; the interrupted context resumes exactly
/// as it was (a faulting access is retried), or with its program counter advanced by one
/// instruction when `skip` is non-zero. Errors: `Denied` (not in an upcall).
pub const EXO_UPCALL_RETURN: u32 = exo_call(0x19);

/// `EXO_MEM_INFO() -> (held, guaranteed, borrow_limit, free)`: frame counts, in x0..x3:
/// frames the caller holds, its guarantee, how many it may hold beyond it, and free frames
/// in the system.
pub const EXO_MEM_INFO: u32 = exo_call(0x1A);

/// `EXO_PARTITION_LOOKUP(name_ipa, len) -> id`: the id of the partition with that name.
/// Errors: `BadAddress`, `TooLarge`, `UnknownPartition`.
pub const EXO_PARTITION_LOOKUP: u32 = exo_call(0x1B);

/// `EXO_SELF_CHECK() -> frames`: the kernel verifies its memory invariants (every frame has
/// one owner and the counts add up; every binding names a frame its partition holds or was
/// granted; every grant names a held frame) and logs the result. Returns the number of
/// frames checked. Errors: `Denied` if an invariant is broken (a kernel bug).
pub const EXO_SELF_CHECK: u32 = exo_call(0x1C);

/// `EXO_GRANT_QUERY(index) -> (phys, owner, rights)`: the `index`-th frame granted *to* the
/// caller (in x0, the owner's partition id in x1, the granted [`bind`] rights in x2), so a
/// grantee learns what it may bind. Errors: `BadAddress` past the last grant.
pub const EXO_GRANT_QUERY: u32 = exo_call(0x1D);

// ---------------------------------------------------------------------------------------
// Protected control transfer (ABI 1.2). Who may talk to whom is fixed by the system
// configuration (`talks_to`); every call checks it, nothing else is needed afterwards.

/// `EXO_CALL(callee, a0..a6) -> (status, r0..r6)`: a synchronous call into partition
/// `callee` (an id) carrying seven argument registers in x2..x8. The CPU passes directly to
/// the callee, which runs on the caller's time slice; the caller resumes when the callee
/// replies, with x0 = 0 and the reply in x1..x7. If the callee is not waiting, the caller
/// waits until it is. Errors: `UnknownPartition` (no such partition, the caller itself, or
/// it ended before replying), `Denied` (the configuration does not let the caller talk to it).
pub const EXO_CALL: u32 = exo_call(0x20);

/// `EXO_WAIT() -> (caller, a0..a6)`: waits for a call. Returns with x0 = the caller's id and
/// its arguments in x1..x7. A partition waiting when nothing else can run is idle, not stuck:
/// the system powers off and reports it as `ok`.
pub const EXO_WAIT: u32 = exo_call(0x21);

/// `EXO_REPLY_WAIT(r0..r6) -> (caller, a0..a6)`: replies to the call being served (x1..x7
/// become the caller's x1..x7), passing the CPU straight back to the caller, and waits for the
/// next call, like [`EXO_WAIT`]. Errors: `Denied` (no call is being served).
pub const EXO_REPLY_WAIT: u32 = exo_call(0x22);

/// `EXO_SEND(target, word) -> 0`: an asynchronous one-word message. The target gets an
/// [`upcall::MESSAGE`] upcall (x1 = sender, x2 = word) at its next hypercall return; the
/// sender continues. Errors: `UnknownPartition`, `Denied`, `Busy` (the target has an
/// undelivered message from someone).
pub const EXO_SEND: u32 = exo_call(0x23);

/// `EXO_WAIT_EVENT() -> 0`: blocks until the caller has a virtual interrupt pending (one of
/// its interrupts fired, a kernel signal was raised, or its virtual timer's deadline passed),
/// giving the CPU away meanwhile. Returns at once if one is pending already. The interrupt
/// itself is taken through the vector when the library OS unmasks IRQs.
pub const EXO_WAIT_EVENT: u32 = exo_call(0x24);
/// `EXO_DONATE(partition) -> 0`: gives the rest of the caller's time slice to `partition`
/// (an id), which runs at once; the caller is runnable again from its next slot. Errors:
/// `UnknownPartition` (no such partition, or the caller), `Busy` (it cannot run now).
pub const EXO_DONATE: u32 = exo_call(0x25);
/// `EXO_RECEIVE() -> (sender, word)`: takes the message [`EXO_SEND`] left for the caller
/// when the caller has the [`signal::MESSAGE`] interrupt enabled (then no upcall is made).
/// Errors: `NotRequired` (no message waiting).
pub const EXO_RECEIVE: u32 = exo_call(0x26);

// ---------------------------------------------------------------------------------------
// Interrupt secure bindings (ABI 1.3). The configuration gives SPIs to partitions; a
// partition drives the distributor's state for those it owns through these calls, and the
// kernel injects them through list registers with the hardware bit, so the library OS's
// EOI deactivates the physical interrupt. Kernel signals are virtual interrupts every
// partition owns ([`signal`]); the virtual timer's PPI 27 is every partition's own.
// Anything else: `NotOwner`. INTIDs >= 1020: `InvalidParameter`.

/// `EXO_IRQ_ENABLE(intid) -> 0`: enables an interrupt the caller owns (for a signal: deliver
/// it as a virtual interrupt instead of an upcall).
pub const EXO_IRQ_ENABLE: u32 = exo_call(0x30);
/// `EXO_IRQ_DISABLE(intid) -> 0`: disables an interrupt the caller owns.
pub const EXO_IRQ_DISABLE: u32 = exo_call(0x31);
/// `EXO_IRQ_SET_PRIORITY(intid, priority) -> 0`: the virtual priority (0 highest .. 255)
/// the interrupt is injected with. Physically every partition's interrupt stays below the
/// kernel's own. Errors also `InvalidParameter` (priority > 255).
pub const EXO_IRQ_SET_PRIORITY: u32 = exo_call(0x32);
/// `EXO_IRQ_SET_TARGET(intid, core) -> 0`: routes an SPI the caller owns to `core`, which must
/// be a core the caller runs on. Errors also `InvalidParameter` (core).
pub const EXO_IRQ_SET_TARGET: u32 = exo_call(0x33);
/// `EXO_IRQ_RAISE(intid) -> 0`: makes an SPI the caller owns pending in the distributor,
/// exactly as its device would (`GICD_ISPENDR`); for a signal, raises it in the caller.
pub const EXO_IRQ_RAISE: u32 = exo_call(0x34);

/// Virtual INTIDs of kernel-to-library-OS signals (also published in the info page). They lie
/// in the SGI range, which no physical interrupt of a partition uses.
pub mod signal {
    /// A revocation request is pending (see [`super::upcall::REVOCATION`]).
    pub const REVOCATION: u32 = 8;
    /// Frames were repossessed or a grant withdrawn.
    pub const REPOSSESSION: u32 = 9;
    /// A message from [`super::EXO_SEND`] waits; take it with [`super::EXO_RECEIVE`].
    pub const MESSAGE: u32 = 10;
    /// All of them.
    pub const ALL: [u32; 3] = [REVOCATION, REPOSSESSION, MESSAGE];
}

/// The EL1 virtual timer's interrupt (PPI 27), every partition's own.
pub const VIRTUAL_TIMER_INTID: u32 = 27;

/// Most frames one [`EXO_FRAME_ALLOC`] call may ask for (one page of addresses).
pub const FRAME_ALLOC_MAX: u64 = 512;

/// Attribute bits of [`EXO_BIND`] and rights of [`EXO_GRANT`].
pub mod bind {
    /// Readable.
    pub const READ: u64 = 1;
    /// Writable.
    pub const WRITE: u64 = 2;
    /// Executable at EL1 and EL0.
    pub const EXECUTE: u64 = 4;
    /// Device-nGnRE memory instead of Normal write-back.
    pub const DEVICE: u64 = 8;
    /// Every defined bit.
    pub const ALL: u64 = READ | WRITE | EXECUTE | DEVICE;
}

/// Flag of [`EXO_SET_UPCALL`]: reflect stage-2 faults on unbound IPAs to the upcall.
pub const UPCALL_FLAG_FAULTS: u64 = 1;

/// Upcalls: how the kernel tells a library OS something it must act on.
///
/// An upcall is delivered when the partition is next resumed after a hypercall (never in
/// the middle of code a time slice interrupted), and never while one is running. The kernel saves the interrupted context (all general registers, PC, PSTATE),
/// then enters the registered entry point at EL1 with interrupts masked, the stack pointer
/// unchanged (AArch64 has no red zone, so the interrupted code's stack is safe), and:
/// `x0` = reason, `x1`..`x3` = reason-specific values. The handler ends with
/// [`EXO_UPCALL_RETURN`].
pub mod upcall {
    /// A revocation request is pending: read the revocation page. `x1` = request sequence.
    pub const REVOCATION: u64 = 1;
    /// Frames were repossessed or a grant withdrawn: read the repossession vector.
    /// `x1` = the vector's new total count.
    pub const REPOSSESSION: u64 = 2;
    /// A stage-2 fault on an unbound IPA: `x1` = IPA, `x2` = access (0 read, 1 write,
    /// 2 execute). Returning retries the access; `skip` skips it.
    pub const FAULT: u64 = 3;
    /// An asynchronous message ([`super::EXO_SEND`]): `x1` = sender's id, `x2` = the word.
    pub const MESSAGE: u64 = 4;
}

/// Largest `len` accepted by [`EXO_CONSOLE_WRITE`].
pub const CONSOLE_WRITE_MAX: u64 = 4096;

/// Exit status a library OS uses when it panics.
pub const EXIT_STATUS_PANIC: u64 = 101;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exo_calls_are_fast_smc64_vendor_hypervisor_calls() {
        assert_eq!(EXO_CONSOLE_WRITE, 0xC600_0001);
        assert!(is_exo_call(EXO_EXIT));
        assert!(!is_exo_call(PSCI_SYSTEM_OFF));
        assert!(!is_exo_call(SMCCC_VERSION));
    }
}
