//! The loader on the board: entry, identity map, UART, the receive loop and the jump.

mod entry;
mod uart;

use core::fmt::Write;

use exo_loader::{
    ACK, Answer, FRAME_TIMEOUT_MS, LINE_PREFIX, LOAD_ADDRESS, QUIET_MS, READY, Receiver, STARTING,
};
use uart::Uart;

/// Largest device tree the loader keeps (the kernel's own limit).
const DTB_ROOM: usize = 2 << 20;
/// The flattened device tree's magic number (big-endian in the blob).
const FDT_MAGIC: u32 = 0xd00d_feed;

unsafe extern "C" {
    static __image_start: u8;
    static __dtb_copy: u8;
    /// Written by `exo image`: which UART is the console (see [`uart::Uart::from_config`]).
    static loader_config: [u32; 4];
}

/// Called by `entry.rs` at EL2 on the identity map, with the firmware's `x0`.
#[unsafe(no_mangle)]
extern "C" fn loader_main(dtb: usize) -> ! {
    // SAFETY: `loader_config` is 16 bytes of the loader's image, written only by the host.
    let config = unsafe { core::ptr::read_volatile(&raw const loader_config) };
    let mut uart = Uart::from_config(config[2]);
    uart.init();
    let base = &raw const __image_start as usize;
    let _ = write!(uart, "\r\n{LINE_PREFIX}exo chain loader at {base:#x}, ");
    let dtb = keep_device_tree(&mut uart, dtb);
    let _ = write!(uart, "{}\r\n", uart.describe());

    // SAFETY: RAM from LOAD_ADDRESS to the loader is no one's: the loader runs above it,
    // its device tree copy is above it, and the firmware's spin tables are below it.
    let dest = unsafe {
        core::slice::from_raw_parts_mut(LOAD_ADDRESS as *mut u8, base - LOAD_ADDRESS as usize)
    };
    let mut receiver = Receiver::new(dest);
    let ticks_per_ms = entry::ticks_per_second() / 1000;
    let mut last_ready: Option<u64> = None;
    let mut last_byte = entry::ticks();
    loop {
        let now = entry::ticks();
        if receiver.is_waiting() && last_ready.is_none_or(|t| now - t >= 1000 * ticks_per_ms) {
            let _ = write!(uart, "{READY}\r\n");
            last_ready = Some(now);
        }
        let answer = if let Some(byte) = uart.get() {
            last_byte = now;
            receiver.feed(byte)
        } else if receiver.is_draining() {
            if now - last_byte >= QUIET_MS * ticks_per_ms {
                receiver.quiet();
            }
            None
        } else if now - last_byte >= FRAME_TIMEOUT_MS * ticks_per_ms {
            last_byte = now;
            receiver.timeout()
        } else {
            // Nothing waiting: look again in 20 us (a byte takes 87 us at 115200 baud, so
            // the 8-byte FIFO cannot fill), rather than hammering the UART: under QEMU every
            // register read takes the lock the thread feeding the UART needs.
            entry::delay(ticks_per_ms / 50);
            None
        };
        match answer {
            None => {}
            Some(Answer::Ack) => {
                uart.put(ACK);
                uart.put(receiver.acknowledged());
            }
            Some(Answer::Refused(why)) => {
                if why.cancels() {
                    let _ = write!(
                        uart,
                        "{LINE_PREFIX}error: {why}; waiting for an image again\r\n"
                    );
                    last_ready = Some(entry::ticks());
                } else {
                    let _ = write!(uart, "{LINE_PREFIX}{why}: send it again\r\n");
                }
                uart.put(Answer::Refused(why).byte());
            }
            Some(Answer::Done(header)) => {
                let _ = write!(
                    uart,
                    "{STARTING}: {} bytes at {LOAD_ADDRESS:#x}, CRC-32 {:#010x} checked, device \
                     tree at {dtb:#x}\r\n",
                    header.length, header.crc
                );
                uart.put(Answer::Done(header).byte());
                uart.put(receiver.acknowledged());
                uart.flush();
                // SAFETY: the image is whole and checked at LOAD_ADDRESS, `dtb` is the
                // device tree; nothing of the loader's is used after the jump.
                unsafe { entry::start_image(dtb, header.length as usize) }
            }
        }
    }
}

/// Copies the device tree at `dtb` to `__dtb_copy`, clear of the image to come, and says
/// where it is; returns the address to give the image (`dtb` itself if it is no device
/// tree, which the image will then report).
fn keep_device_tree(uart: &mut Uart, dtb: usize) -> usize {
    let copy = &raw const __dtb_copy as usize;
    // SAFETY: reads the header words at the address the firmware gave, in RAM.
    let (magic, size) = unsafe {
        let words = dtb as *const u32;
        (
            u32::from_be(words.read_volatile()),
            u32::from_be(words.add(1).read_volatile()) as usize,
        )
    };
    if dtb == 0 || magic != FDT_MAGIC || size > DTB_ROOM {
        let _ = write!(uart, "no device tree at x0 = {dtb:#x} (passed on as is), ");
        return dtb;
    }
    // SAFETY: the blob is `size` bytes of RAM at `dtb`; the copy's room is reserved by
    // `loader.ld` after the loader. `copy` (not `copy_nonoverlapping`) in case they meet.
    unsafe { core::ptr::copy(dtb as *const u8, copy as *mut u8, size) };
    let _ = write!(
        uart,
        "device tree of {size} bytes moved from {dtb:#x} to {copy:#x}, "
    );
    copy
}

#[panic_handler]
fn panic(info: &core::panic::PanicInfo<'_>) -> ! {
    // SAFETY: as in `loader_main`.
    let config = unsafe { core::ptr::read_volatile(&raw const loader_config) };
    let mut uart = Uart::from_config(config[2]);
    let _ = write!(uart, "\r\n{LINE_PREFIX}error: loader panic: {info}\r\n");
    loop {
        aarch64_wfe();
    }
}

fn aarch64_wfe() {
    // SAFETY: waits for an event; no memory or register effects.
    unsafe { core::arch::asm!("wfe", options(nomem, nostack)) };
}
