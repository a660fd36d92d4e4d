//! The boot sequence at EL2, from the device tree to the first partition.

use super::boot::image_layout;
use super::platform::{Aarch64Platform, init_console};
use super::trap::KERNEL;
use crate::boot_info::{BootInfo, ConsoleUart, PowerOff, UartKind};
use crate::cpus::CoreId;
use crate::device_tree::{self, DeviceTree, DtbError};
use crate::drivers::Uart;
use crate::drivers::pl011::Pl011;
use crate::kernel::Kernel;
use crate::mem::frame_table::{FrameTable, Owner};
use crate::mem::ram::{Bank, Ram};
use exo_abi::package::{HEADER_SIZE, Package};
use exo_abi::{PAGE_SIZE, PhysAddr};
use log::{error, info, warn};

/// A linker-script symbol's value, built from absolute relocations so that the compiler
/// assumes nothing of it (a symbol at 0 is no null reference).
macro_rules! linker_value {
    ($symbol:literal) => {{
        let value: u64;
        // SAFETY: materialises a link-time constant in a register; touches no memory.
        unsafe {
            core::arch::asm!(
                concat!("movz {0}, #:abs_g3:", $symbol),
                concat!("movk {0}, #:abs_g2_nc:", $symbol),
                concat!("movk {0}, #:abs_g1_nc:", $symbol),
                concat!("movk {0}, #:abs_g0_nc:", $symbol),
                out(reg) value,
                options(nomem, nostack, pure),
            )
        };
        value
    }};
}

/// What the kernel knows of the board before the device tree: its linker script's
/// `EARLY_UART` (the console PL011) and `EARLY_PM_WATCHDOG` (0: PSCI).
struct EarlyBoard {
    uart: u64,
    power_off: PowerOff,
}

impl EarlyBoard {
    fn from_linker_script() -> Self {
        let watchdog = linker_value!("EARLY_PM_WATCHDOG");
        Self {
            uart: linker_value!("EARLY_UART"),
            power_off: match watchdog {
                0 => PowerOff::Psci,
                base => PowerOff::Bcm2835Watchdog {
                    base: PhysAddr::new(base),
                },
            },
        }
    }
}

/// The device tree at `address`: the header is checked before the size it declares (at
/// most [`device_tree::MAX_SIZE`]) is read, then the whole blob is validated.
///
/// # Safety
///
/// `address`, if 8-byte aligned and not 0, must be readable for a header and, if that
/// header is a device tree's, for the size it declares; nothing may write the blob while
/// the tree is in use.
unsafe fn device_tree_at(address: u64) -> Result<DeviceTree<'static>, DtbError> {
    if address == 0 || !address.is_multiple_of(8) {
        return Err(DtbError::BadAddress(address));
    }
    // SAFETY: readable per the caller.
    let header =
        unsafe { core::slice::from_raw_parts(address as *const u8, device_tree::HEADER_SIZE) };
    let size = device_tree::blob_size(header)?;
    // SAFETY: readable per the caller, the size bounded by `blob_size`.
    let blob = unsafe { core::slice::from_raw_parts(address as *const u8, size) };
    DeviceTree::new(blob)
}

/// Starts the early console, then reads the machine from the device tree at `dtb` and moves
/// the console and the power-off to what it names. `kernel` is an address in the image.
/// Never returns on a failure: prints it and powers off.
fn read_machine(dtb: u64, kernel: u64) -> (DeviceTree<'static>, BootInfo) {
    // From here on a failure or a panic is printed and ends in a power-off, even before
    // the device tree is read.
    let early = EarlyBoard::from_linker_script();
    super::el2::set_power_off(early.power_off);
    // SAFETY: the board's linker script names its console PL011; the MMU is off, so the
    // access is Device-nGnRnE. Its transmit wait is bounded, so a dead UART cannot hang.
    init_console(Uart::Pl011(unsafe { Pl011::new(early.uart) }), None);
    // SAFETY: `dtb` is the device tree address the loader passed in x0 (Linux boot
    // protocol), in memory nothing else writes; only the header is read before checks.
    let tree = match unsafe { device_tree_at(dtb) } {
        Ok(tree) => tree,
        Err(e) => fail(format_args!("no usable device tree at {dtb:#x}: {e}")),
    };
    let boot = match BootInfo::from_fdt(&tree, PhysAddr::new(kernel)) {
        Ok(boot) => boot,
        Err(e) => fail(e),
    };
    // A tree that names no way to power off leaves the board's.
    if boot.power_off != PowerOff::None {
        super::el2::set_power_off(boot.power_off);
    }
    match boot.console {
        Some(console) => {
            // SAFETY: the device tree names this UART of this kind; at this point the MMU
            // is off, so the access is Device-nGnRnE, and after `mmu::enable` it is mapped
            // as Device memory (the low 4 GiB of device space).
            let uart = unsafe { Uart::new(&console) };
            init_console(uart, Some(console.clock_or_default()));
        }
        None => warn!(
            "the device tree names no UART exo drives: the console stays on the board's \
             PL011 at {:#x}",
            early.uart
        ),
    }
    info!(
        "exo {} at EL2 on {}",
        env!("CARGO_PKG_VERSION"),
        tree.model().unwrap_or("a machine with no model")
    );
    if let Some(console) = boot.console {
        announce_console(&console);
    }
    super::el2::announce_power_off(boot.power_off);
    (tree, boot)
}

/// Says which UART the console is on and how it was programmed.
fn announce_console(console: &ConsoleUart) {
    let name = match console.kind {
        UartKind::Pl011 => "PL011",
        UartKind::MiniUart => "mini UART",
    };
    let why = if console.named_by_stdout {
        "the device tree's stdout-path"
    } else {
        "the first PL011: the device tree's stdout-path names no UART exo drives"
    };
    let clock = if console.clock_hz.is_some() {
        "from the device tree"
    } else {
        "assumed: the device tree gives none"
    };
    info!(
        "console: {name} at {:#x} ({why}), 115200 8N1 from a {} Hz clock ({clock})",
        console.base.raw(),
        console.clock_or_default()
    );
}

/// Rust entry point, called by `boot.rs` on the boot core at EL2 with the stack set up.
#[unsafe(no_mangle)]
extern "C" fn exo_kernel_main(dtb: u64) -> ! {
    let layout = image_layout();
    let (tree, boot) = read_machine(dtb, layout.start);

    // RAM the kernel manages: every bank, trimmed to 2 MiB boundaries so the EL2 map can
    // use blocks. The kernel, its package and the frame table live in the bank it boots in.
    let ram = Ram::new(boot.memory.as_slice());
    let Some(home) = ram.bank_holding(layout.start) else {
        fail("the kernel's memory bank is smaller than a 2 MiB block")
    };
    let image = super::mmu::KernelImage {
        text_start: layout.start,
        text_end: layout.text_end,
        rodata_end: layout.rodata_end,
        guard: layout.stack_guard,
    };
    super::mmu::enable(&ram, image);
    super::el2::init();
    info!("counter frequency {} Hz", super::el2::timer_frequency());
    announce_ram(&ram);
    let ram_end = home.end;

    // The boot package sits right after the kernel image.
    let package_start = layout.end;
    // SAFETY: the header lies in RAM just past the image (QEMU and the Pi firmware load the
    // whole file there); it is only read.
    let header = unsafe { core::slice::from_raw_parts(package_start as *const u8, HEADER_SIZE) };
    let total = u64::from_le_bytes(header[16..24].try_into().unwrap_or([0; 8]));
    let available = ram_end.saturating_sub(package_start);
    if total > available {
        fail("the boot package claims to be larger than RAM");
    }
    // SAFETY: `total` bytes from `package_start` are inside RAM (checked above) and are
    // reserved in the frame table below, so nothing writes them while the slice lives.
    let bytes = unsafe { core::slice::from_raw_parts(package_start as *const u8, total as usize) };
    let package = match Package::parse(bytes) {
        Ok(package) => package,
        Err(e) => fail(format_args!(
            "no usable boot package ({e}): build the image with `exo build`"
        )),
    };

    let kernel = (layout.start, package_start + total);
    let (table, index) = frame_table(&ram, home, kernel, dtb, &tree, &boot);
    info!(
        "frames: {} total, {} kernel, {} free",
        table.frame_count(),
        table.count(Owner::Kernel),
        table.count(Owner::Free)
    );

    match boot.gic.map(super::gic::init) {
        Some(Ok(version)) => {
            let us = package.slice_us();
            if us.is_multiple_of(1000) {
                info!(
                    "{version:?} interrupt controller; time slices of {} ms",
                    us / 1000
                );
            } else {
                info!("{version:?} interrupt controller; time slices of {us} us");
            }
            super::trap::set_preemptive();
        }
        Some(Err(why)) => {
            log::warn!("interrupt controller unusable ({why}): partitions run cooperatively");
        }
        None => {
            log::warn!("no known interrupt controller: partitions run cooperatively");
        }
    }
    let pinned = package
        .partitions()
        .filter(|p| p.core < 32)
        .fold(0u32, |cores, p| cores | 1 << p.core);
    super::cores::start(&tree, &ram, pinned);
    let mut kernel = Kernel::new(Aarch64Platform, table, index);
    for core in (1..crate::cpus::MAX_CORES).filter_map(CoreId::new) {
        if super::cores::is_up(core) {
            kernel.set_core_up(core);
        }
    }
    if let Err(e) = kernel.load(&package) {
        fail(e.named(&package));
    }
    *KERNEL.lock() = Some(kernel);
    // Every partition is loaded: the other cores may enter theirs.
    super::cores::release();
    super::trap::enter_first(CoreId::BOOT, layout.stack_top)
}

/// Says which RAM banks the kernel manages: one line each, then the totals (`RAM
/// <start>..<end> (<n> MiB)` as before banks, for one bank).
fn announce_ram(ram: &Ram) {
    let mib = |bytes: u64| bytes >> 20;
    if ram.banks().len() > 1 {
        for (i, bank) in ram.banks().iter().enumerate() {
            info!(
                "RAM bank {i}: {:#x}..{:#x} ({} MiB)",
                bank.start,
                bank.end,
                mib(bank.size())
            );
        }
    }
    let (start, end, pa_range) = (ram.start(), ram.end(), super::el2::pa_range_encoding());
    match ram.banks().len() {
        1 => info!(
            "RAM {start:#x}..{end:#x} ({} MiB), PARange code {pa_range}",
            mib(ram.bytes())
        ),
        n => info!(
            "RAM {start:#x}..{end:#x} ({} MiB in {n} banks), PARange code {pa_range}",
            mib(ram.bytes())
        ),
    }
    if ram.ignored() != 0 {
        warn!(
            "{} MiB of the device tree's memory is not used (past 512 GiB, beyond {} banks, \
             or not whole 2 MiB blocks)",
            mib(ram.ignored()),
            crate::mem::ram::MAX_RAM_BANKS
        );
    }
}

/// The frame table and the binding index, carved out of the kernel's own bank `home` right
/// after `kernel` (its image and boot package): one entry each per frame of every bank,
/// holes between banks included. Reserves for the kernel `kernel` up to the end of the
/// index, the device tree at `dtb`, its `/memreserve/` entries and its `reserved-memory`
/// regions.
fn frame_table(
    ram: &Ram,
    home: Bank,
    kernel: (u64, u64),
    dtb: u64,
    tree: &DeviceTree<'_>,
    boot: &BootInfo,
) -> (FrameTable<'static>, &'static mut [u64]) {
    let frames = ram.span_frames();
    let index_start = kernel.1.next_multiple_of(PAGE_SIZE);
    let storage_start = index_start + (frames * 8) as u64;
    let storage_end = storage_start + (frames * 2) as u64;
    if storage_end > home.end {
        fail("the kernel's memory bank is too small for the frame table");
    }
    // SAFETY: [index_start, storage_end) is RAM of the kernel's bank past the package, not
    // used by anything else, and reserved for the kernel right after creation; u64 and u16
    // alignment hold.
    let (index, storage) = unsafe {
        (
            core::slice::from_raw_parts_mut(index_start as *mut u64, frames),
            core::slice::from_raw_parts_mut(storage_start as *mut u16, frames),
        )
    };
    let region = |r: device_tree::Region| (r.start, r.start.saturating_add(r.size));
    let reservations = [(kernel.0, storage_end), (dtb, dtb + boot.dtb_size)]
        .into_iter()
        .chain(tree.memory_reservations().map(region))
        .chain(boot.reserved.as_slice().iter().copied().map(region));
    (ram.frame_table(storage, reservations), index)
}

/// Reports a boot failure the runner recognises, once, as `exo: error: boot failed:
/// <why>`, then powers off.
fn fail(why: impl core::fmt::Display) -> ! {
    error!("boot failed: {why}");
    super::el2::system_off()
}
