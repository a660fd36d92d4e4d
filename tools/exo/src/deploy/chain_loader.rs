//! The serial chain loader as a card's `kernel8.img` (`exo image --chain-loader`): the
//! `exo-loader` crate cross-built, flattened like the kernel, with the console UART
//! written into its configuration block. See `loader/src/lib.rs` for the protocol and
//! [`super::serial`] for the host's side.

use anyhow::{Context, bail};

use super::Console;
use crate::elf::Elf;
use crate::workspace::Workspace;
use crate::{cross, image, toolchain};

/// Offset of the loader's configuration block in its image (after the arm64 header).
pub const CONFIG_OFFSET: usize = 64;
/// The block's first bytes.
pub const CONFIG_MAGIC: [u8; 8] = *b"EXOLDRCF";

/// The configuration word for `console`: 0 the mini UART, 1 the PL011.
fn console_word(console: Console) -> u32 {
    match console {
        Console::MiniUart => 0,
        Console::Pl011 => 1,
    }
}

/// Writes `console` into the flattened loader `flat`.
pub fn configure(flat: &mut [u8], console: Console) -> anyhow::Result<()> {
    let at = CONFIG_OFFSET..CONFIG_OFFSET + CONFIG_MAGIC.len();
    if flat.get(at.clone()) != Some(&CONFIG_MAGIC[..]) {
        bail!("chain loader: no configuration block (\"EXOLDRCF\" at offset {CONFIG_OFFSET})");
    }
    flat[at.end..at.end + 4].copy_from_slice(&console_word(console).to_le_bytes());
    Ok(())
}

/// Builds the chain loader and returns its image, talking on `console`.
pub fn build(workspace: &Workspace, console: Console) -> anyhow::Result<Vec<u8>> {
    let toolchain = toolchain::detect(workspace)?;
    let elf_path = cross::build_loader(workspace, &toolchain)?;
    let elf = Elf::read(&elf_path)?;
    let mut flat = image::flatten_kernel(&elf)
        .with_context(|| format!("flattening the chain loader {}", elf_path.display()))?;
    configure(&mut flat, console)?;
    Ok(flat)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_console_goes_into_the_configuration_block() {
        let mut flat = vec![0; 128];
        assert!(configure(&mut flat, Console::Pl011).is_err());
        flat[64..72].copy_from_slice(b"EXOLDRCF");
        configure(&mut flat, Console::Pl011).unwrap();
        assert_eq!(flat[72..76], [1, 0, 0, 0]);
        configure(&mut flat, Console::MiniUart).unwrap();
        assert_eq!(flat[72..76], [0, 0, 0, 0]);
    }
}
