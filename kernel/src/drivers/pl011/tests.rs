use super::*;

/// A fake PL011 register block in host memory, 32-bit words.
struct FakeBlock {
    words: *mut [u32; 0x48 / 4],
}

impl FakeBlock {
    fn new(flags: u32) -> Self {
        let block = Self {
            words: Box::into_raw(Box::new([0u32; 0x48 / 4])),
        };
        block.set(0x18, flags);
        block
    }

    fn uart(&self) -> Pl011 {
        // SAFETY: the fake block is laid out as a PL011's and is leaked, so it lives on.
        unsafe { Pl011::new(self.words as u64) }
    }

    fn get(&self, offset: usize) -> u32 {
        // SAFETY: `offset` is a register's, inside the block.
        unsafe { core::ptr::read_volatile(&(*self.words)[offset / 4]) }
    }

    fn set(&self, offset: usize, value: u32) {
        // SAFETY: as for `get`.
        unsafe { core::ptr::write_volatile(&mut (*self.words)[offset / 4], value) }
    }
}

#[test]
fn divisors_for_115200_baud() {
    // 48 MHz / (16 × 115200) = 26.042 = 26 + 3/64 (the Pi 4's UART clock).
    assert_eq!(baud_divisors(48_000_000, 115_200), (26, 3));
    // 24 MHz (QEMU virt's apb-pclk): 13.021 = 13 + 1/64.
    assert_eq!(baud_divisors(24_000_000, 115_200), (13, 1));
}

#[test]
fn disabled_first_divisors_before_line_control_enabled_last() {
    let steps = init_sequence(DEFAULT_CLOCK_HZ);
    assert_eq!(steps[0], (Register::Cr, 0));
    assert_eq!(steps[steps.len() - 1], (Register::Cr, CR_ENABLE));
    let at = |wanted| steps.iter().position(|&s| s == wanted).unwrap();
    // UARTLCR_H's write latches the divisors: it must come after both.
    let lcrh = at((Register::Lcrh, LCRH_8N1_FIFO));
    assert!(at((Register::Ibrd, 26)) < lcrh && at((Register::Fbrd, 3)) < lcrh);
    assert!(lcrh < steps.len() - 1);
}

#[test]
fn init_programs_115200_8n1_with_fifos_and_enables() {
    let block = FakeBlock::new(0);
    block.uart().init(DEFAULT_CLOCK_HZ);
    assert_eq!(block.get(0x24), 26, "UARTIBRD");
    assert_eq!(block.get(0x28), 3, "UARTFBRD");
    assert_eq!(block.get(0x2c), 0x70, "UARTLCR_H: 8 bits, FIFOs");
    assert_eq!(block.get(0x30), 0x301, "UARTCR: UARTEN, TXE, RXE");
    assert_eq!(block.get(0x38), 0, "UARTIMSC");
}

#[test]
fn a_full_fifo_that_never_drains_drops_bytes_instead_of_hanging() {
    let block = FakeBlock::new(1 << 5); // TXFF
    let mut uart = block.uart();
    uart.put(b'x');
    assert!(uart.stuck);
    assert_eq!(block.get(0x00), 0);
    uart.put(b'y');
    assert_eq!(block.get(0x00), 0);
    block.set(0x18, 0);
    let mut fresh = block.uart();
    fresh.put(b'z');
    assert_eq!(block.get(0x00), u32::from(b'z'));
}
