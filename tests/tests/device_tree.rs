//! A device tree the kernel cannot use stops the boot visibly: before any console is known
//! from the tree, the kernel prints the failure on the board's UART (from its linker
//! script) and powers off the board's way, so QEMU exits instead of spinning silently.
//!
//! QEMU itself walks the tree it is given (it writes the memory node), so the corruption
//! must pass libfdt's walk: a property whose name offset points outside the strings block,
//! which exo's validation of the whole blob refuses.

use std::path::PathBuf;
use std::time::Duration;

use exo_system_tests::{Boot, Booted, RunEnd, workspace_root};

/// Long enough for a boot that fails at once; a hang is killed at this deadline.
const TIMEOUT: Duration = Duration::from_secs(30);

const FDT_BEGIN_NODE: u32 = 1;
const FDT_PROP: u32 = 3;

fn word(blob: &[u8], at: usize) -> u32 {
    u32::from_be_bytes(blob[at..at + 4].try_into().unwrap())
}

/// `blob` without the padding past its strings block (QEMU doubles a `-dtb` blob's size,
/// and a padded 1 MiB one would then be refused for its size, not for the corruption).
fn compact(mut blob: Vec<u8>) -> Vec<u8> {
    let end = (word(&blob, 12) + word(&blob, 32)) as usize;
    blob.truncate(end);
    blob[4..8].copy_from_slice(&(end as u32).to_be_bytes());
    blob
}

/// `blob` with the first property of node `name` renamed to an offset past the strings.
fn with_a_bad_property_name(mut blob: Vec<u8>, name: &str) -> Vec<u8> {
    let mut needle = FDT_BEGIN_NODE.to_be_bytes().to_vec();
    needle.extend_from_slice(name.as_bytes());
    needle.push(0);
    let node = blob
        .windows(needle.len())
        .position(|w| w == needle)
        .unwrap_or_else(|| panic!("no node {name}"));
    let property = (node + needle.len()).next_multiple_of(4);
    assert_eq!(
        word(&blob, property),
        FDT_PROP,
        "{name} starts with no property"
    );
    blob[property + 8..property + 12].copy_from_slice(&0x7FFF_0000u32.to_be_bytes());
    blob
}

/// Writes `blob` where the test may keep it.
fn save(name: &str, blob: &[u8]) -> PathBuf {
    let path = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join(name);
    std::fs::write(&path, blob).unwrap();
    path
}

fn fixture(name: &str) -> Vec<u8> {
    std::fs::read(workspace_root().join("kernel/tests/fixtures").join(name)).unwrap()
}

/// Boots the default system on `board` with `dtb` and checks the failure was printed and
/// QEMU exited by itself.
fn boot_fails_visibly(board: &str, dtb: PathBuf) -> Booted {
    let booted = Boot::new(&workspace_root().join("guests/configs/default.toml"))
        .board(board)
        .dtb(dtb)
        .timeout(TIMEOUT)
        .run();
    booted.check(
        matches!(booted.outcome.end, RunEnd::Exited(_)),
        "QEMU did not exit: the kernel hung instead of powering off after the failure",
    );
    booted.check(
        booted.outcome.lines.iter().any(|line| {
            line.starts_with("exo: error: boot failed: no usable device tree at 0x")
                && line.contains("malformed device tree")
        }),
        "no `boot failed: no usable device tree` line on the console",
    );
    booted.check(
        !booted.outcome.success(),
        "a boot without a device tree passed",
    );
    booted.check(
        booted.outcome.results.is_empty(),
        "partitions ran without a device tree",
    );
    booted
}

#[test]
fn a_corrupt_device_tree_on_qemu_virt_is_reported_then_psci_powers_off() {
    let blob = with_a_bad_property_name(compact(fixture("qemu-virt-gicv3.dtb")), "pmu");
    boot_fails_visibly("qemu-virt", save("virt-bad-name.dtb", &blob));
}

#[test]
fn a_corrupt_device_tree_on_the_pi_is_reported_then_the_watchdog_powers_off() {
    let blob = with_a_bad_property_name(fixture("rpi4b-2gib.dtb"), "cpu-thermal");
    boot_fails_visibly("raspi4b", save("pi-bad-name.dtb", &blob));
}
