//! Memory authority: who owns each frame of RAM ([`frame_table`], over every bank of
//! [`ram`]) and how each partition's intermediate physical addresses reach those frames
//! ([`stage2`]).
//!
//! Both modules are portable Rust tested on the host. The architecture supplies only the
//! stage-2 descriptor encoding (`arch::aarch64::stage2_format`) and the table memory and TLB
//! maintenance behind the traits in [`stage2`].

pub mod binding_index;
pub mod frame_table;
pub mod grants;
pub mod ram;
pub mod stage2;
