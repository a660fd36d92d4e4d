//! Linux partitions: an unmodified arm64 Linux kernel with its initramfs and a generated
//! device tree, beside library-OS partitions (docs/linux.md).
//!
//! [`fetch`] brings Debian's stock kernel and busybox (pinned, checked, never installed)
//! and [`initramfs`] builds the test initramfs around busybox; [`image_header`] checks a
//! kernel file is an arm64 Image; [`layout`] places kernel, device tree and initramfs in its
//! RAM, and [`device_tree`] writes the device tree it boots with.

pub mod device_tree;
pub mod fetch;
pub mod image_header;
pub mod initramfs;
pub mod layout;
pub mod package;
