//! Pi-only commands given another board refuse before anything is built: the binary's
//! first line is the refusal, not the cross-build announcement.

use std::path::Path;
use std::process::Command;

/// Runs the `exo` binary with `args` from the workspace root; returns its status and
/// standard error.
fn exo(args: &[&str]) -> (bool, String) {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let output = Command::new(env!("CARGO_BIN_EXE_exo"))
        .args(args)
        .current_dir(&root)
        .output()
        .expect("cannot run exo");
    (
        output.status.success(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

#[test]
fn run_serial_on_another_board_refuses_before_the_build_line() {
    let (ok, stderr) = exo(&[
        "run",
        "guests/configs/default.toml",
        "--board",
        "qemu-virt",
        "--serial",
        "/nonexistent/tty",
    ]);
    assert!(!ok, "exo run --serial accepted qemu-virt:\n{stderr}");
    assert!(!stderr.contains("cross-building"), "{stderr}");
    assert_eq!(
        stderr.trim_end(),
        "error: exo run --serial sends the image to the chain loader on a Raspberry Pi 4: \
         give --board raspi4b (the configuration's board is `qemu-virt`)"
    );
}

#[test]
fn image_for_another_board_refuses_before_the_build_line() {
    let out = std::env::temp_dir().join(format!("exo-other-board-{}", std::process::id()));
    let out = out.to_str().expect("UTF-8 temporary path");
    let (ok, stderr) = exo(&[
        "image",
        "guests/configs/default.toml",
        "--board",
        "qemu-virt",
        "--out",
        out,
    ]);
    assert!(!ok, "exo image accepted qemu-virt:\n{stderr}");
    assert!(!stderr.contains("cross-building"), "{stderr}");
    assert!(
        stderr.starts_with("error: exo image writes Raspberry Pi 4 boot folders only"),
        "{stderr}"
    );
    assert!(!Path::new(out).exists(), "{out} was written");
}
