//! Device drivers the kernel itself uses. Everything else is the library OSes' business.

pub mod pl011;
