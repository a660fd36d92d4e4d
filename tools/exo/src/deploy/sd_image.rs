//! A card image to `dd` onto an SD card: an MBR with one FAT32 partition (type 0x0c, FAT32
//! with LBA addressing, which the Pi's boot ROM and EEPROM bootloader read), formatted with
//! `mkfs.fat` and filled with `mcopy` (dosfstools and mtools: no root, no loop devices).

use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{Context, bail};

/// Bytes per sector.
const SECTOR: u64 = 512;
/// The partition starts at 1 MiB, the alignment SD cards' erase blocks want.
const PARTITION_START: u64 = 1 << 20;
/// The smallest card image: FAT32 needs at least 65525 clusters, which `mkfs.fat` fits in
/// 63 MiB with its default cluster size for that size.
const MIN_SIZE: u64 = 64 << 20;
/// Partition type: FAT32 with LBA.
pub const FAT32_LBA: u8 = 0x0c;

/// The master boot record of a disk with one partition of `sectors` sectors from sector
/// `start` (no boot code; CHS fields set to "use LBA").
pub fn master_boot_record(start: u32, sectors: u32) -> [u8; 512] {
    let mut mbr = [0u8; 512];
    // Disk signature (offset 440): "exo" and a version byte.
    mbr[440..444].copy_from_slice(b"exo\x01");
    let entry = &mut mbr[446..462];
    entry[0] = 0x80; // active
    entry[1..4].copy_from_slice(&[0xfe, 0xff, 0xff]);
    entry[4] = FAT32_LBA;
    entry[5..8].copy_from_slice(&[0xfe, 0xff, 0xff]);
    entry[8..12].copy_from_slice(&start.to_le_bytes());
    entry[12..16].copy_from_slice(&sectors.to_le_bytes());
    mbr[510] = 0x55;
    mbr[511] = 0xaa;
    mbr
}

/// Size of a card image holding `payload` bytes of files: at least [`MIN_SIZE`], else the
/// payload plus half again and 16 MiB (FAT, directories, slack), in whole MiB.
pub fn image_size(payload: u64) -> u64 {
    let wanted = PARTITION_START + payload + payload / 2 + (16 << 20);
    wanted.max(MIN_SIZE).next_multiple_of(1 << 20)
}

/// The mtools image argument addressing the partition (`-i FILE@@OFFSET`).
fn mtools_image(image: &Path) -> String {
    format!("{}@@{PARTITION_START}", image.display())
}

fn run(command: &mut Command, what: &str) -> anyhow::Result<()> {
    let output = command
        .env("MTOOLS_SKIP_CHECK", "1")
        .output()
        .with_context(|| {
            format!("running {what} (scripts/setup installs dosfstools and mtools)")
        })?;
    if !output.status.success() {
        bail!(
            "{what} failed:\n{}",
            String::from_utf8_lossy(&output.stderr).trim()
        );
    }
    Ok(())
}

/// `mkfs.fat`: on PATH, else in /usr/sbin or /sbin (not on a Debian user's PATH).
fn mkfs_fat() -> PathBuf {
    ["/usr/sbin/mkfs.fat", "/sbin/mkfs.fat"]
        .iter()
        .map(PathBuf::from)
        .find(|path| path.exists())
        .unwrap_or_else(|| PathBuf::from("mkfs.fat"))
}

/// Files under `dir`, as paths relative to it, directories before their contents.
fn walk(dir: &Path, prefix: &Path, out: &mut Vec<(PathBuf, bool)>) -> anyhow::Result<()> {
    let mut entries: Vec<_> = std::fs::read_dir(dir)?
        .collect::<Result<_, _>>()
        .with_context(|| format!("listing {}", dir.display()))?;
    entries.sort_by_key(|e| e.file_name());
    for entry in entries {
        let relative = prefix.join(entry.file_name());
        let is_dir = entry.file_type()?.is_dir();
        out.push((relative.clone(), is_dir));
        if is_dir {
            walk(&entry.path(), &relative, out)?;
        }
    }
    Ok(())
}

/// Writes `image`: an MBR and one FAT32 partition labelled `EXOBOOT` holding every file
/// of `folder`.
pub fn write(folder: &Path, image: &Path) -> anyhow::Result<()> {
    let mut entries = Vec::new();
    walk(folder, Path::new(""), &mut entries)?;
    let mut payload = 0;
    for (relative, _) in &entries {
        payload += std::fs::metadata(folder.join(relative))?.len();
    }
    let size = image_size(payload);
    let sectors = u32::try_from((size - PARTITION_START) / SECTOR).context("card too large")?;
    let start = u32::try_from(PARTITION_START / SECTOR).context("partition start")?;
    let _ = std::fs::remove_file(image);
    let mut file =
        std::fs::File::create(image).with_context(|| format!("creating {}", image.display()))?;
    std::io::Write::write_all(&mut file, &master_boot_record(start, sectors))?;
    file.set_len(size)?;
    drop(file);
    run(
        Command::new(mkfs_fat())
            .args(["-F", "32", "-n", "EXOBOOT", "--offset"])
            .arg(start.to_string())
            .arg(image)
            .arg((u64::from(sectors) * SECTOR / 1024).to_string()),
        "mkfs.fat",
    )?;
    let target = mtools_image(image);
    for (relative, is_dir) in &entries {
        let inside = format!("::/{}", relative.display());
        if *is_dir {
            run(Command::new("mmd").args(["-i", &target, &inside]), "mmd")?;
        } else {
            run(
                Command::new("mcopy")
                    .args(["-o", "-i", &target])
                    .arg(folder.join(relative))
                    .arg(&inside),
                "mcopy",
            )?;
        }
    }
    Ok(())
}

/// Copies every file of the card image's FAT partition into `dest` (`mcopy -s`), to check
/// what a card would hold.
pub fn extract(image: &Path, dest: &Path) -> anyhow::Result<()> {
    std::fs::create_dir_all(dest)?;
    run(
        Command::new("mcopy")
            .args(["-s", "-n", "-i", &mtools_image(image), "::/*"])
            .arg(dest),
        "mcopy",
    )
}

/// The partition table entry of a card image: (type, first sector, sectors).
pub fn partition(image: &Path) -> anyhow::Result<(u8, u32, u32)> {
    let bytes = std::fs::read(image).with_context(|| format!("reading {}", image.display()))?;
    if bytes.len() < 512 || bytes[510..512] != [0x55, 0xaa] {
        bail!("{} has no MBR", image.display());
    }
    let entry = &bytes[446..462];
    let word =
        |at: usize| u32::from_le_bytes([entry[at], entry[at + 1], entry[at + 2], entry[at + 3]]);
    Ok((entry[4], word(8), word(12)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_mbr_has_one_fat32_lba_partition_at_one_mib() {
        let mbr = master_boot_record(2048, 129024);
        assert_eq!(
            &mbr[446..462],
            &[
                0x80, 0xfe, 0xff, 0xff, 0x0c, 0xfe, 0xff, 0xff, 0x00, 0x08, 0x00, 0x00, 0x00, 0xf8,
                0x01, 0x00
            ]
        );
        assert!(mbr[462..510].iter().all(|&b| b == 0), "a second partition");
        assert_eq!(mbr[510..], [0x55, 0xaa]);
    }

    #[test]
    fn a_card_is_at_least_64_mib_and_grows_with_its_files() {
        assert_eq!(image_size(3 << 20), 64 << 20);
        assert_eq!(image_size(100 << 20), 167 << 20);
        assert_eq!(image_size(100 << 20) % (1 << 20), 0);
    }
}
