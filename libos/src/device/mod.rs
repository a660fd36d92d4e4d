//! Devices a partition owns: the MMIO regions its configuration gives it (`devices = [...]`),
//! which the kernel binds as Device memory and lists in the info page, and drivers for them.
//!
//! A [`Region`] is the right to drive one such run of pages. [`claim`] hands out each region
//! at most once, so a driver built on a `Region` is the only code touching those registers;
//! that is what lets the drivers here be safe. The GICv2 virtual CPU interface the kernel
//! maps for [`crate::irq`] is claimed the same way and is not listed by [`regions`].
//!
//! ```ignore
//! let binding = device::regions(info).next().ok_or("no device")?;
//! let uart = device::pl011::Pl011::new(device::claim(info, binding.ipa)?);
//! ```

pub mod pl011;

use core::fmt;

use exo_abi::info::{GicInterface, MemoryBinding, MemoryKind};
use exo_abi::{Ipa, PAGE_SIZE, PhysAddr};
use spin::Mutex;

use crate::Info;
use crate::arch::Mmio;

/// Most regions that can be claimed at once.
pub const MAX_CLAIMS: usize = 16;

/// Why a region cannot be claimed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Error {
    /// No Device-memory binding of this partition starts at that IPA.
    NotFound,
    /// The region is claimed already (by a driver, or by the library OS itself).
    Claimed,
    /// [`MAX_CLAIMS`] regions are claimed.
    TooMany,
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Error::NotFound => "no device region of this partition starts there",
            Error::Claimed => "the device region is claimed already",
            Error::TooMany => "too many device regions claimed",
        })
    }
}

/// The right to drive one device region: `pages` pages of Device memory at `ipa`. Not
/// `Clone`: there is one per region, handed out by [`claim`].
#[derive(Debug)]
pub struct Region {
    ipa: Ipa,
    phys: PhysAddr,
    pages: u64,
}

impl Region {
    /// Where the partition sees the registers.
    pub fn ipa(&self) -> Ipa {
        self.ipa
    }

    /// The device's physical address (what the board calls it).
    pub fn phys(&self) -> PhysAddr {
        self.phys
    }

    /// Size in pages.
    pub fn pages(&self) -> u64 {
        self.pages
    }

    /// Size in bytes.
    pub fn bytes(&self) -> u64 {
        self.pages.saturating_mul(PAGE_SIZE)
    }

    /// The typed register block `T` at the start of the region, for the driver that owns it.
    ///
    /// Panics if `T` does not fit in the region or the region is not aligned for `T`.
    pub(crate) fn registers<T>(&self) -> Mmio<T> {
        // SAFETY: a `Region` is built only by `claim` and `claim_gic_cpu_interface`, for a
        // run of pages the info page lists as bound Device memory at this IPA for the life of
        // the partition, where no Rust object lives (device bindings lie outside RAM); and at
        // most once per run (`record_claim` keeps the claim list; `Region` is not `Clone`), so
        // the driver holding it is the only one driving these registers.
        unsafe { Mmio::new(self.ipa, self.bytes()) }
    }
}

/// IPAs of the claimed regions (0: free slot).
static CLAIMED: Mutex<[u64; MAX_CLAIMS]> = Mutex::new([0; MAX_CLAIMS]);

/// The partition's device regions, as the info page lists them (Device-memory bindings),
/// without the GICv2 CPU interface the kernel maps for interrupts.
pub fn regions(info: &Info) -> impl Iterator<Item = MemoryBinding> + 'static {
    let gic = gic_cpu_interface(info);
    info.bindings()
        .filter(move |binding| binding.kind == MemoryKind::Device && Some(binding.ipa) != gic)
}

/// Claims the device region that starts at `ipa` (one of [`regions`]).
pub fn claim(info: &Info, ipa: Ipa) -> Result<Region, Error> {
    let binding = regions(info)
        .find(|binding| binding.ipa == ipa)
        .ok_or(Error::NotFound)?;
    record_claim(binding.ipa)?;
    Ok(Region {
        ipa: binding.ipa,
        phys: binding.phys,
        pages: binding.pages,
    })
}

/// Claims the GICv2 virtual CPU interface the info page names (two pages at its IPA); for
/// [`crate::irq`]. `None` on a GICv3 system or without interrupt facts.
pub(crate) fn claim_gic_cpu_interface(info: &Info) -> Option<Result<Region, Error>> {
    let ipa = gic_cpu_interface(info)?;
    if ipa.raw() == 0 || !ipa.is_page_aligned() {
        return Some(Err(Error::NotFound));
    }
    let phys = info
        .bindings()
        .find(|binding| binding.ipa == ipa)
        .map_or(PhysAddr::new(0), |binding| binding.phys);
    Some(record_claim(ipa).map(|()| Region {
        ipa,
        phys,
        pages: GIC_CPU_INTERFACE_PAGES,
    }))
}

/// Pages of the GICv2 virtual CPU interface frame (`GICV_*` up to `GICV_DIR` at 0x1000).
const GIC_CPU_INTERFACE_PAGES: u64 = 2;

/// The IPA of the GICv2 CPU interface, if the info page names one.
fn gic_cpu_interface(info: &Info) -> Option<Ipa> {
    match info.interrupts()?.gic {
        GicInterface::V2 { cpu_interface } => Some(cpu_interface),
        GicInterface::V3 => None,
    }
}

/// Records `ipa` as claimed, unless it is already.
fn record_claim(ipa: Ipa) -> Result<(), Error> {
    crate::irq::without_interrupts(|| {
        let mut claimed = CLAIMED.lock();
        if claimed.contains(&ipa.raw()) {
            return Err(Error::Claimed);
        }
        let free = claimed
            .iter_mut()
            .find(|slot| **slot == 0)
            .ok_or(Error::TooMany)?;
        *free = ipa.raw();
        Ok(())
    })
}

/// A region for host tests of the drivers (the host's register blocks are plain memory).
#[cfg(test)]
pub(crate) fn test_region(pages: u64) -> Region {
    Region {
        ipa: Ipa::new(0x0900_0000),
        phys: PhysAddr::new(0x0900_0000),
        pages,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use exo_abi::Rights;
    use exo_abi::info::{GicInterface, InfoHeader, InfoWriter, InterruptInfo, SIZE};
    use exo_abi::{Name, PhysAddr};

    fn device(ipa: u64, pages: u64) -> MemoryBinding {
        MemoryBinding {
            ipa: Ipa::new(ipa),
            phys: PhysAddr::new(ipa),
            pages,
            rights: Rights::READ_WRITE,
            kind: MemoryKind::Device,
        }
    }

    fn info() -> Info {
        let page: &'static mut [u8; SIZE] = Box::leak(Box::new([0; SIZE]));
        let header = InfoHeader {
            abi_version: exo_abi::ABI_VERSION,
            partition_id: 0,
            name: Name::new("echo").unwrap(),
            timer_frequency: 62_500_000,
            guaranteed_frames: 256,
            borrow_limit_frames: 0,
            partition_count: 1,
        };
        let mut writer = InfoWriter::new(page, &header);
        writer.set_interrupts(
            &InterruptInfo {
                gic: GicInterface::V2 {
                    cpu_interface: Ipa::new(0x0801_0000),
                },
                revocation: 8,
                repossession: 9,
                message: 10,
                virtual_timer: 27,
            },
            [40].into_iter(),
        );
        writer.push_binding(&device(0x0801_0000, 2));
        writer.push_binding(&MemoryBinding {
            kind: MemoryKind::Normal,
            ..device(0x4000_0000, 16)
        });
        writer.push_binding(&device(0x0904_0000, 1));
        Info::from_page(page).unwrap()
    }

    #[test]
    fn regions_are_device_bindings_without_the_gic() {
        let info = info();
        let ipas: Vec<u64> = regions(&info).map(|b| b.ipa.raw()).collect();
        assert_eq!(ipas, [0x0904_0000]);
    }

    #[test]
    fn each_region_is_claimed_once() {
        let info = info();
        assert_eq!(
            claim(&info, Ipa::new(0x4000_0000)).unwrap_err(),
            Error::NotFound,
            "RAM is not a device"
        );
        let uart = claim(&info, Ipa::new(0x0904_0000)).unwrap();
        assert_eq!((uart.pages(), uart.bytes()), (1, 4096));
        assert_eq!(uart.phys(), PhysAddr::new(0x0904_0000));
        assert_eq!(
            claim(&info, Ipa::new(0x0904_0000)).unwrap_err(),
            Error::Claimed
        );
        let gic = claim_gic_cpu_interface(&info).unwrap().unwrap();
        assert_eq!((gic.ipa(), gic.pages()), (Ipa::new(0x0801_0000), 2));
        assert_eq!(
            claim_gic_cpu_interface(&info).unwrap().unwrap_err(),
            Error::Claimed
        );
        assert_eq!(
            claim(&info, Ipa::new(0x0801_0000)).unwrap_err(),
            Error::NotFound,
            "the GIC CPU interface is the library OS's, not a device region"
        );
    }
}
