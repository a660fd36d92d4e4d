//! First instructions (the arm64 Image header, the move to `LOADER_BASE`, EL3 to EL2, the
//! identity map) and the last ones (caches cleaned, MMU off, the jump to the image).

use exo_loader::LOAD_ADDRESS;

core::arch::global_asm!(
    r#"
    .section .text.head, "ax"
    .global _start
_start:
    /* arm64 Image header (Documentation/arch/arm64/booting.rst), as the kernel's. */
    b       loader_primary
    .long   0                       /* code1 */
    .quad   0x80000                 /* text_offset */
    .quad   __image_size            /* image_size: the loader, its tables, stack, DTB room */
    .quad   0x2                     /* flags: little-endian, 4 KiB pages */
    .quad   0, 0, 0                 /* res2..res4 */
    .ascii  "ARM\x64"               /* magic */
    .long   0                       /* res5 */
    /* Offset 64: the loader's configuration, patched by `exo image --chain-loader`. */
    .global loader_config
loader_config:
    .ascii  "EXOLDRCF"              /* magic the host looks for */
    .long   0                       /* console: 0 = mini UART, 1 = PL011 */
    .long   0

    .section .text.boot, "ax"
loader_primary:
    mrs     x1, mpidr_el1           /* only core 0; the others stay in the firmware's pen */
    and     x1, x1, #0xffffff
    cbnz    x1, loader_park
    mov     x19, x0                 /* the device tree */

    /* Copy [_start, __copy_end) from where we run to where we are linked. */
    adr     x1, _start
    ldr     x2, =__image_start
    ldr     x3, =__copy_end
    cmp     x1, x2
    b.eq    2f
1:  ldp     x4, x5, [x1], #16
    stp     x4, x5, [x2], #16
    cmp     x2, x3
    b.lo    1b
2:  dsb     sy
    ic      iallu
    dsb     sy
    isb
    ldr     x1, =loader_high
    br      x1

loader_high:
    mrs     x1, CurrentEL
    lsr     x1, x1, #2
    cmp     x1, #2
    b.eq    loader_el2
    cmp     x1, #3
    b.ne    loader_park
    /* EL3 -> EL2 as the kernel does: SCR_EL3 NS, RW, HCE; SPSR = EL2h, DAIF masked. */
    mov     x1, #0x5b1
    msr     scr_el3, x1
    mov     x1, #0x3c9
    msr     spsr_el3, x1
    adr     x1, loader_el2
    msr     elr_el3, x1
    eret

loader_el2:
    ldr     x1, =__bss_start
    ldr     x2, =__bss_end
3:  cmp     x1, x2
    b.hs    4f
    stp     xzr, xzr, [x1], #16
    b       3b
4:  ldr     x1, =__stack_top
    mov     sp, x1

    /* Identity map, level 1, 1 GiB blocks: [0] RAM (Normal write-back, inner shareable),
     * [1..3] Device-nGnRnE (RAM above 1 GiB is not touched; the peripherals are in [3]). */
    ldr     x1, =__page_table
    ldr     x2, =0x705              /* block, AttrIndx 1, SH inner, AF */
    str     x2, [x1]
    ldr     x2, =0x0040000000000401 /* block, AttrIndx 0, AF, XN */
    mov     x3, #1
5:  lsl     x4, x3, #30
    orr     x4, x4, x2
    str     x4, [x1, x3, lsl #3]
    add     x3, x3, #1
    cmp     x3, #4
    b.lo    5b
    dsb     sy
    ldr     x2, =0xff00             /* MAIR: attr0 Device-nGnRnE, attr1 Normal WB */
    msr     mair_el2, x2
    ldr     x2, =0x80803520         /* TCR_EL2: RES1 31/23, T0SZ 32, WB WA, inner sh, 4K */
    msr     tcr_el2, x2
    msr     ttbr0_el2, x1
    isb
    tlbi    alle2
    dsb     sy
    isb
    ldr     x2, =0x30c5183d         /* SCTLR_EL2: RES1 bits, M, C, SA, I */
    msr     sctlr_el2, x2
    isb

    mov     x0, x19
    bl      loader_main
loader_park:
    wfe
    b       loader_park

    /* start_image(dtb, length): clean the image, the device tree copy and the loader's
     * own memory to RAM, turn the MMU and caches off and enter the image at 0x80000. */
    .global loader_start_image
loader_start_image:
    mov     x19, x0
    mrs     x3, ctr_el0
    ubfx    x3, x3, #16, #4
    mov     x4, #4
    lsl     x4, x4, x3              /* D-cache line size in bytes */
    ldr     x5, =0x80000
    add     x6, x5, x1
    bl      loader_clean
    ldr     x5, =__image_start
    ldr     x6, =__dtb_copy
    ldr     x7, =0x200000
    add     x6, x6, x7
    bl      loader_clean
    dsb     sy
    ldr     x2, =0x30c50830         /* SCTLR_EL2: RES1 bits only: MMU and caches off */
    msr     sctlr_el2, x2
    isb
    ic      iallu
    tlbi    alle2
    dsb     sy
    isb
    mov     x0, x19
    mov     x1, xzr
    mov     x2, xzr
    mov     x3, xzr
    ldr     x4, =0x80000
    br      x4

    /* Clean and invalidate [x5, x6) by line (x4 bytes); uses x5 and x8 only. */
loader_clean:
    sub     x8, x4, #1
    bic     x5, x5, x8
6:  dc      civac, x5
    add     x5, x5, x4
    cmp     x5, x6
    b.lo    6b
    ret
"#
);

unsafe extern "C" {
    fn loader_start_image(dtb: usize, length: usize) -> !;
}

/// Enters the image received at [`LOAD_ADDRESS`] with `x0` = `dtb`.
///
/// # Safety
///
/// `length` bytes of a whole image are at [`LOAD_ADDRESS`]; nothing returns.
pub unsafe fn start_image(dtb: usize, length: usize) -> ! {
    const _: () = assert!(LOAD_ADDRESS == 0x80000);
    // SAFETY: the caller's promise; the routine runs without the stack.
    unsafe { loader_start_image(dtb, length) }
}

/// The generic timer's count (CNTPCT_EL0).
pub fn ticks() -> u64 {
    let ticks: u64;
    // SAFETY: reads a counter register at EL2.
    unsafe { core::arch::asm!("isb", "mrs {}, cntpct_el0", out(reg) ticks, options(nostack)) };
    ticks
}

/// The counter's frequency (CNTFRQ_EL0), or the Pi 4's 54 MHz if the firmware left it 0.
pub fn ticks_per_second() -> u64 {
    let freq: u64;
    // SAFETY: reads a register at EL2.
    unsafe { core::arch::asm!("mrs {}, cntfrq_el0", out(reg) freq, options(nomem, nostack)) };
    if freq == 0 { 54_000_000 } else { freq }
}

/// Waits `ticks` counter ticks.
pub fn delay(ticks: u64) {
    let start = self::ticks();
    while self::ticks().wrapping_sub(start) < ticks {
        core::hint::spin_loop();
    }
}
