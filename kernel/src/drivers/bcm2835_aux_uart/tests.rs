use super::*;

/// A fake auxiliary block in host memory: 32-bit words, the UART's registers at +0x40.
struct FakeBlock {
    words: *mut [u32; 0x6c / 4],
}

impl FakeBlock {
    fn new(lsr: u32, enables: u32) -> Self {
        let words = Box::into_raw(Box::new([0u32; 0x6c / 4]));
        let block = Self { words };
        block.set(0x04, enables);
        block.set(0x54, lsr);
        block
    }

    fn uart(&self) -> MiniUart {
        // SAFETY: the fake block is laid out as the auxiliary block and lives until the
        // test ends (it is leaked).
        unsafe { MiniUart::new(self.words as u64 + UART_OFFSET) }
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
    // 500 MHz / (8 × 543) = 115101 baud (-0.09 %); 542 would give 115313 (+0.10 %).
    assert_eq!(baud_divisor(500_000_000, 115_200), 542);
    // The classic 250 MHz core clock of older Pis: 270.
    assert_eq!(baud_divisor(250_000_000, 115_200), 270);
}

#[test]
fn the_block_is_enabled_first_and_the_transmitter_last() {
    let steps = init_sequence(DEFAULT_CLOCK_HZ);
    assert_eq!(steps[0], Step::SetBits(Register::Enables, 1));
    assert_eq!(steps[1], Step::Write(Register::Cntl, 0));
    assert_eq!(steps[steps.len() - 1], Step::Write(Register::Cntl, 0b11));
    let at = |wanted: Step| steps.iter().position(|&s| s == wanted).unwrap();
    assert!(at(Step::Write(Register::Baud, 542)) < steps.len() - 1);
    assert!(at(Step::Write(Register::Lcr, 3)) < steps.len() - 1);
}

#[test]
fn init_programs_115200_8n1_and_keeps_the_spi_enables() {
    let block = FakeBlock::new(0, 0b110);
    block.uart().init(DEFAULT_CLOCK_HZ);
    assert_eq!(block.get(0x04), 0b111, "AUX_ENABLES");
    assert_eq!(block.get(0x4c), 3, "AUX_MU_LCR_REG: 8 bits");
    assert_eq!(block.get(0x44), 0, "AUX_MU_IER_REG: no interrupts");
    assert_eq!(block.get(0x68), 542, "AUX_MU_BAUD_REG");
    assert_eq!(
        block.get(0x60),
        0b11,
        "AUX_MU_CNTL_REG: transmitter and receiver on"
    );
}

#[test]
fn bytes_go_out_when_the_fifo_has_room_and_lines_end_in_cr_lf() {
    let block = FakeBlock::new(1 << 5, 1);
    let mut uart = block.uart();
    uart.put(b'x');
    assert_eq!(block.get(0x40), u32::from(b'x'));
    crate::console::Sink::write_bytes(&mut uart, b"\n");
    assert_eq!(block.get(0x40), u32::from(b'\n'));
}

#[test]
fn a_uart_whose_fifo_never_drains_drops_bytes_instead_of_hanging() {
    let block = FakeBlock::new(0, 1);
    let mut uart = block.uart();
    uart.put(b'x');
    assert!(uart.stuck);
    assert_eq!(block.get(0x40), 0, "a byte was written into a full FIFO");
    // Once stuck, no more waiting: this returns at once.
    uart.put(b'y');
    uart.flush();
    assert_eq!(block.get(0x40), 0);
}
