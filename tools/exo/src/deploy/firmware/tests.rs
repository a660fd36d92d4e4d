use super::*;

fn pin(sum: &str) -> Package {
    Package {
        name: "raspi-firmware".to_owned(),
        version: "1.0".to_owned(),
        fallback: None,
        files: vec![PinnedFile {
            member: "./usr/lib/raspi-firmware/start4.elf".to_owned(),
            out: "start4.elf".to_owned(),
            sha256: sum.to_owned(),
        }],
    }
}

/// Not the SHA-256 of any file the tests write.
const WRONG_SUM: &str = "0000000000000000000000000000000000000000000000000000000000000000";

fn scratch(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("exo-firmware-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

#[test]
fn the_boards_pins_name_every_boot_file_with_a_sha256() {
    let path = crate::Workspace::locate()
        .unwrap()
        .platform_dir()
        .join("raspi4b/firmware.toml");
    let pins = Pins::load(&path).unwrap();
    let outs: Vec<&str> = pins
        .packages
        .iter()
        .flat_map(|p| p.files.iter().map(|f| f.out.as_str()))
        .collect();
    assert_eq!(outs, ["start4.elf", "fixup4.dat", "bcm2711-rpi-4-b.dtb"]);
    for file in pins.packages.iter().flat_map(|p| &p.files) {
        assert_eq!(file.sha256.len(), 64, "{}", file.out);
        assert!(
            file.sha256
                .bytes()
                .all(|b| b.is_ascii_hexdigit() && !b.is_ascii_uppercase())
        );
    }
    assert_eq!(pins.apt.architecture, "arm64");
}

#[test]
fn a_file_with_another_checksum_is_refused_naming_the_pin() {
    let dir = scratch("check");
    let path = dir.join("start4.elf");
    std::fs::write(&path, "exo\n").unwrap();
    let sum = sha256(&path).unwrap();
    assert!(check(&pin(&sum), &pin(&sum).files[0], &path).is_ok());
    let wrong = pin(WRONG_SUM);
    let error = check(&wrong, &wrong.files[0], &path)
        .unwrap_err()
        .to_string();
    assert!(
        error.contains(&sum) && error.contains("raspi-firmware 1.0"),
        "{error}"
    );
    std::fs::remove_dir_all(dir).unwrap();
}

#[test]
fn cached_files_with_the_pinned_checksums_are_used_without_apt() {
    let cache = scratch("cache");
    let dir = cache.join("raspi-firmware_1.0");
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("start4.elf"), "exo\n").unwrap();
    let sum = sha256(&dir.join("start4.elf")).unwrap();
    // A source no apt-get could reach: using it would fail.
    let pins = Pins {
        apt: AptSource {
            mirror: "http://invalid.invalid/debian".to_owned(),
            suite: "none".to_owned(),
            components: vec!["main".to_owned()],
            architecture: "arm64".to_owned(),
        },
        packages: vec![pin(&sum)],
    };
    let fetched = fetch_all(&pins, Path::new("firmware.toml"), &cache).unwrap();
    assert_eq!(fetched.len(), 1);
    assert_eq!(fetched[0].out, "start4.elf");
    assert_eq!(fetched[0].path, dir.join("start4.elf"));
    assert!(
        !cache.join("apt").exists(),
        "apt was used although the cache was intact"
    );
    std::fs::remove_dir_all(cache).unwrap();
}
