//! Safe wrappers for the memory hypercalls (`EXO_FRAME_ALLOC` .. `EXO_GRANT_QUERY`), one per
//! call, with the ABI's argument order. They touch no library OS bookkeeping: use the
//! functions of [`crate::mem`] to keep the frame table in step.

use exo_abi::call::{Call, FRAME_ALLOC_MAX, FRAME_RELEASE_MAX};
use exo_abi::{BindAttributes, Error, Ipa, PhysAddr, Rights, UpcallFlags};

use crate::arch;

/// Calls `function` and decodes `x0`..`x3`: `Ok` with all four registers when `x0` is not
/// an error code.
fn call4(call: Call, args: &[u64]) -> Result<[u64; 4], Error> {
    let mut registers = [0; 6];
    let count = args.len().min(registers.len());
    registers[..count].copy_from_slice(&args[..count]);
    let results = arch::hvc4(call.id(), registers);
    Error::from_register(results[0]).map(|_| results)
}

/// A partition's identifier (its index in the system configuration).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct PartitionId(pub u32);

/// What `EXO_MEM_INFO` reports, in frames.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct MemInfo {
    /// Frames the caller holds.
    pub held: u64,
    /// Frames it is guaranteed (never revoked).
    pub guaranteed: u64,
    /// Frames it may hold beyond the guarantee.
    pub borrow_limit: u64,
    /// Free frames in the system.
    pub free: u64,
}

/// One frame granted to the caller, as `EXO_GRANT_QUERY` reports it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Grant {
    /// The frame.
    pub phys: PhysAddr,
    /// Who holds it and granted it.
    pub owner: PartitionId,
    /// Rights the grant allows.
    pub rights: Rights,
}

/// `EXO_FRAME_ALLOC`: allocates `out.len()` frames (1..=[`FRAME_ALLOC_MAX`]), zeroed, and
/// stores their addresses in `out`. All or nothing; may block until borrowers give frames
/// back. Returns the number allocated.
pub fn frame_alloc(out: &mut [PhysAddr]) -> Result<usize, Error> {
    let count = out.len();
    if count == 0 || count as u64 > FRAME_ALLOC_MAX {
        return Err(Error::InvalidParameter);
    }
    // The kernel writes the names straight into `out`.
    let ipa = arch::ipa_of_frames(out);
    call4(Call::FrameAlloc, &[count as u64, ipa.raw()])?;
    Ok(count)
}

/// `EXO_FRAME_ALLOC_AT`: allocates the named frame if it is free.
pub fn frame_alloc_at(phys: PhysAddr) -> Result<PhysAddr, Error> {
    call4(Call::FrameAllocAt, &[phys.raw()]).map(|r| PhysAddr::new(r[0]))
}

/// `EXO_FRAME_FREE`: gives a held, unbound frame back.
pub fn frame_free(phys: PhysAddr) -> Result<(), Error> {
    call4(Call::FrameFree, &[phys.raw()]).map(drop)
}

/// `EXO_BIND`: binds a held or granted frame at `ipa` with `attributes`.
pub fn bind(phys: PhysAddr, ipa: Ipa, attributes: BindAttributes) -> Result<(), Error> {
    call4(Call::Bind, &[phys.raw(), ipa.raw(), attributes.bits()]).map(drop)
}

/// `EXO_UNBIND`: removes the binding at `ipa`; returns the frame it named.
pub fn unbind(ipa: Ipa) -> Result<PhysAddr, Error> {
    call4(Call::Unbind, &[ipa.raw()]).map(|r| PhysAddr::new(r[0]))
}

/// `EXO_GRANT`: lets `partition` bind `phys` with `rights`.
pub fn grant(phys: PhysAddr, partition: PartitionId, rights: Rights) -> Result<(), Error> {
    call4(
        Call::Grant,
        &[phys.raw(), u64::from(partition.0), rights.to_register()],
    )
    .map(drop)
}

/// `EXO_GRANT_REVOKE`: withdraws a grant, breaking the grantee's bindings of the frame.
pub fn grant_revoke(phys: PhysAddr, partition: PartitionId) -> Result<(), Error> {
    call4(Call::GrantRevoke, &[phys.raw(), u64::from(partition.0)]).map(drop)
}

/// `EXO_GRANT_QUERY`: the `index`-th frame granted to the caller; `BadAddress` past the last.
pub fn grant_query(index: u64) -> Result<Grant, Error> {
    call4(Call::GrantQuery, &[index]).map(|r| Grant {
        phys: PhysAddr::new(r[0]),
        owner: PartitionId(r[1] as u32),
        // A kernel speaking this ABI reports only rights; anything else is dropped.
        rights: Rights::from_bits_truncate(r[2] as u32),
    })
}

/// `EXO_REVOKE_ACK`: reports that the library OS released what it chose to for the pending
/// revocation request; returns the frames still owed (0: the request is met).
pub fn revoke_ack() -> Result<u64, Error> {
    call4(Call::RevokeAck, &[]).map(|r| r[0])
}

/// `EXO_FRAME_RELEASE`: unbinds, scrubs and frees the held frames whose addresses are in
/// `frames` (1..=[`FRAME_RELEASE_MAX`] of them, none granted out), all or nothing; counts
/// as the acknowledgement of a revocation request. Returns the frames released and the
/// frames still owed. A refused batch changed nothing: the error is that of the first bad
/// entry.
pub fn frame_release(frames: &mut [u64]) -> Result<(u64, u64), Error> {
    let count = frames.len();
    if count == 0 || count as u64 > FRAME_RELEASE_MAX {
        return Err(Error::InvalidParameter);
    }
    let ipa = arch::ipa_of_words(frames);
    call4(Call::FrameRelease, &[ipa.raw(), count as u64]).map(|r| (r[0], r[1]))
}

/// `EXO_SET_LOSS_ORDER`: registers the page of the caller's RAM bound read-write at `page`
/// as its loss order (`Ipa(0)` unregisters).
pub fn set_loss_order(page: Ipa) -> Result<(), Error> {
    call4(Call::SetLossOrder, &[page.raw()]).map(drop)
}

/// `EXO_SET_UPCALL`: registers the upcall entry (`Ipa(0)` disables upcalls).
pub fn set_upcall(entry: Ipa, flags: UpcallFlags) -> Result<(), Error> {
    call4(Call::SetUpcall, &[entry.raw(), flags.bits()]).map(drop)
}

/// `EXO_UPCALL_RETURN`: ends the current upcall. Returns only if the kernel refused (outside
/// an upcall it answers `Denied`).
pub fn upcall_return(skip: bool) -> Error {
    match call4(Call::UpcallReturn, &[u64::from(skip)]) {
        Err(error) => error,
        Ok(_) => Error::NotSupported,
    }
}

/// `EXO_MEM_INFO`: frame counts of the caller and the system.
pub fn mem_info() -> Result<MemInfo, Error> {
    call4(Call::MemInfo, &[]).map(|r| MemInfo {
        held: r[0],
        guaranteed: r[1],
        borrow_limit: r[2],
        free: r[3],
    })
}

/// `EXO_PARTITION_LOOKUP`: the id of the partition called `name`.
pub fn partition_lookup(name: &str) -> Result<PartitionId, Error> {
    let ipa = arch::ipa_of(name.as_bytes());
    call4(Call::PartitionLookup, &[ipa.raw(), name.len() as u64]).map(|r| PartitionId(r[0] as u32))
}

/// `EXO_SELF_CHECK`: asks the kernel to verify its memory invariants; returns the number of
/// frames it checked, or `Denied` if one is broken.
pub fn self_check() -> Result<u64, Error> {
    call4(Call::SelfCheck, &[]).map(|r| r[0])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_are_checked_before_calling() {
        assert_eq!(frame_alloc(&mut []), Err(Error::InvalidParameter));
        let mut too_many = [PhysAddr::new(0); FRAME_ALLOC_MAX as usize + 1];
        assert_eq!(frame_alloc(&mut too_many), Err(Error::InvalidParameter));
        // The host fake refuses everything else.
        assert_eq!(mem_info(), Err(Error::NotSupported));
        assert_eq!(upcall_return(false), Error::NotSupported);
    }
}
