//! Linux partitions: an unmodified arm64 Linux kernel with its initramfs and a generated
//! device tree, beside library-OS partitions (docs/linux.md).
//!
//! [`fetch`] brings Debian's stock kernel and busybox (pinned, checked, never installed)
//! and [`initramfs`] builds the test initramfs around busybox.

pub mod fetch;
pub mod initramfs;
