//! The exo hypercall ABI, shared by the kernel, every library OS and the host tools.
//!
//! Everything two sides of the EL2/EL1 boundary (or the build host and the kernel) must agree
//! on lives here and nowhere else: SMCCC function identifiers and the description of every
//! call ([`call`]), error codes ([`Error`]), flag words ([`flags`]), the layout of pages the kernel shares with a library OS ([`info`]) and the
//! boot package the image builder appends to the kernel ([`package`]).
//!
//! Layouts are defined as explicit little-endian byte offsets with safe encoders and decoders,
//! so neither side needs `unsafe` casts to read them and the host can test them.

#![cfg_attr(not(test), no_std)]
#![forbid(unsafe_code)]

#[cfg(feature = "alloc")]
extern crate alloc;

pub mod addr;
mod bytes;
pub mod call;
mod error;
pub mod flags;
pub mod info;
pub mod package;
pub mod revocation;

pub use addr::{Ipa, PAGE_SIZE, PhysAddr};
pub use bytes::Name;
pub use error::Error;
pub use flags::{BindAttributes, InfoFlags, Rights, UpcallFlags};

/// Version of this ABI, reported by [`call::EXO_ABI_VERSION`] and in the info page.
/// Major in the upper 16 bits, minor in the lower 16, like SMCCC and PSCI versions.
pub const ABI_VERSION: u32 = 0x0001_0003;
