//! Architecture layer: everything that knows about a particular machine lives below here.

pub mod aarch64;
#[cfg(any(test, feature = "fake"))]
pub mod fake;
