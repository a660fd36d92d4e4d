//! Device drivers the kernel itself uses. Everything else is the library OSes' business.

pub mod bcm2835_watchdog;
pub mod pl011;
