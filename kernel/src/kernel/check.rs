//! The kernel's self-check of its memory invariants, run on request (`EXO_SELF_CHECK`) and by
//! the host model tests after every step.
//!
//! The central one: a frame mapped in any partition's stage 2 is held by that partition
//! (and recorded in the binding index at that IPA) or granted to it (and recorded in the
//! grant at that IPA), and is never free.

use super::{Kernel, Platform};
use crate::mem::frame_table::Owner;
use crate::mem::frame_table::PartitionId;
use crate::partition::State;
use exo_abi::info::{KERNEL_WINDOW_END, KERNEL_WINDOW_START};
use exo_abi::{Ipa, PhysAddr};

/// A broken invariant (a kernel bug).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CheckError {
    /// Owner counts do not add up to the number of frames of RAM (holes between memory
    /// banks are no frames: see [`crate::mem::frame_table::FrameTable::exclude`]).
    Conservation,
    /// A binding names a frame its partition neither holds nor was granted.
    UnauthorisedBinding {
        /// Partition index.
        partition: PartitionId,
        /// Where.
        ipa: Ipa,
        /// Which frame.
        frame: PhysAddr,
    },
    /// The binding index disagrees with the stage-2 tables.
    IndexMismatch {
        /// The frame.
        frame: PhysAddr,
    },
    /// A grant names a frame its owner does not hold.
    StaleGrant {
        /// The frame.
        frame: PhysAddr,
    },
    /// A stage 2 maps a free frame: the next allocation would share it.
    MappedFree {
        /// Partition index.
        partition: PartitionId,
        /// Where.
        ipa: Ipa,
        /// Which frame.
        frame: PhysAddr,
    },
    /// A grant records a binding its grantee's stage 2 does not have.
    GrantNotMapped {
        /// The frame.
        frame: PhysAddr,
    },
    /// A finished partition still holds frames.
    FinishedHoldsFrames {
        /// Partition index.
        partition: PartitionId,
    },
}

impl core::fmt::Display for CheckError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            CheckError::Conservation => f.write_str("frame counts do not add up"),
            CheckError::UnauthorisedBinding {
                partition,
                ipa,
                frame,
            } => {
                write!(
                    f,
                    "partition {partition} binds {frame} at {ipa} without authority"
                )
            }
            CheckError::IndexMismatch { frame } => write!(f, "binding index wrong for {frame}"),
            CheckError::StaleGrant { frame } => write!(f, "grant of {frame} by a non-holder"),
            CheckError::MappedFree {
                partition,
                ipa,
                frame,
            } => write!(f, "partition {partition} maps free frame {frame} at {ipa}"),
            CheckError::GrantNotMapped { frame } => {
                write!(f, "grant of {frame} records a binding its grantee lacks")
            }
            CheckError::FinishedHoldsFrames { partition } => {
                write!(f, "finished partition {partition} still holds frames")
            }
        }
    }
}

impl<P: Platform> Kernel<'_, P> {
    /// Verifies every memory invariant; returns the number of frames checked.
    pub fn self_check(&mut self) -> Result<u64, CheckError> {
        let frames = &self.frames;
        let held: usize = self
            .partitions
            .iter()
            .flatten()
            .map(|p| frames.count(Owner::Partition(p.id)))
            .sum();
        if frames.count(Owner::Free) + frames.count(Owner::Kernel) + held != frames.frame_count() {
            return Err(CheckError::Conservation);
        }
        for slot in 0..crate::mem::grants::MAX_GRANTS {
            let Some(grant) = self.grants.get(slot).copied() else {
                continue;
            };
            if self.frames.owner(grant.frame) != Some(Owner::Partition(grant.owner)) {
                return Err(CheckError::StaleGrant { frame: grant.frame });
            }
            // The other direction of the mapping check below: what a grant says is bound
            // is bound, so withdrawing it unmaps exactly that.
            if let Some(ipa) = grant.bound_at
                && self.translate(grant.grantee, ipa).map(|(frame, _)| frame) != Some(grant.frame)
            {
                return Err(CheckError::GrantNotMapped { frame: grant.frame });
            }
        }
        for id in self.ids() {
            let Some(p) = self.partition(id) else {
                continue;
            };
            let owner = Owner::Partition(p.id);
            // One ended from another core while it ran keeps what it holds, mapped as before,
            // until its own core tears it down: checked like a live one until then.
            if matches!(p.state, State::Finished(_)) && !self.awaiting_teardown(id) {
                if self.frames.count(owner) != 0 {
                    return Err(CheckError::FinishedHoldsFrames { partition: id });
                }
                continue;
            }
            let me = p.id;
            let kernel_pages = p.kernel_pages;
            let devices = p.devices;
            let mut result = Ok(());
            let mut bound_frames = 0usize;
            let Kernel {
                platform,
                frames,
                partitions,
                bound,
                grants,
                ..
            } = &mut *self;
            let Some(p) = partitions[id.index()].as_mut() else {
                continue;
            };
            let Some(stage2) = p.stage2.as_ref() else {
                continue;
            };
            let mut pool = crate::partition::TablePool::default();
            let tables = super::Tables {
                platform,
                frames,
                pool: &mut pool,
            };
            stage2.for_each_mapping(&tables, |m| {
                if result.is_err() {
                    return;
                }
                if tables.frames.owner(m.phys) == Some(Owner::Free) {
                    result = Err(CheckError::MappedFree {
                        partition: id,
                        ipa: m.ipa,
                        frame: m.phys,
                    });
                    return;
                }
                let ok = if m.ipa >= KERNEL_WINDOW_START && m.ipa < KERNEL_WINDOW_END {
                    kernel_pages
                        .bindings()
                        .any(|(ipa, f)| ipa == m.ipa && f == m.phys)
                        && tables.frames.owner(m.phys) == Some(Owner::Kernel)
                        && !m.attrs.write
                } else if devices.contains(m.ipa) {
                    // Device memory from the configuration: never RAM (checked at load).
                    m.attrs.kind == exo_abi::info::MemoryKind::Device
                        && tables.frames.owner(m.phys).is_none()
                } else if tables.frames.owner(m.phys) == Some(owner) {
                    bound_frames += 1;
                    bound.get(m.phys) == Some(m.ipa)
                } else {
                    grants.iter().any(|(_, g)| {
                        g.frame == m.phys
                            && g.grantee == me
                            && g.bound_at == Some(m.ipa)
                            && g.rights.contains(m.attrs.rights())
                    })
                };
                if !ok {
                    result = Err(CheckError::UnauthorisedBinding {
                        partition: id,
                        ipa: m.ipa,
                        frame: m.phys,
                    });
                }
            });
            result?;
            // Every frame the index says is bound must be one of those mappings.
            let recorded = self
                .frames
                .owned_by(owner)
                .filter(|&f| self.bound.get(f).is_some())
                .count();
            if recorded != bound_frames {
                let frame = self
                    .frames
                    .owned_by(owner)
                    .next()
                    .unwrap_or(PhysAddr::new(0));
                return Err(CheckError::IndexMismatch { frame });
            }
        }
        Ok(self.frames.frame_count() as u64)
    }
}
