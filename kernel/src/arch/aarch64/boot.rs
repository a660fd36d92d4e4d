//! First instructions: the arm64 Image header, the climb down from EL3 if needed, parking
//! of secondary cores, the boot stack and `.bss`, then Rust.
//!
//! Entry conditions follow the Linux arm64 boot protocol (Documentation/arch/arm64/booting.rst),
//! which QEMU `virt`, QEMU `raspi4b` and the Raspberry Pi firmware all honour for an image
//! carrying this header: MMU off, `x0` = physical address of the device tree blob, entered
//! at EL2 (or EL3 on some loaders).

core::arch::global_asm!(
    r#"
    .section .text.head, "ax"
    .global _start
_start:
    /* arm64 Image header (64 bytes). code0 branches over it. */
    b       primary_entry
    .long   0                       /* code1 */
    .quad   0x80000                 /* text_offset: load at RAM base + 512 KiB */
    .quad   __image_size            /* image_size: patched by `exo build` to include the package */
    .quad   0x2                     /* flags: little-endian, 4 KiB pages, 2 MiB-aligned base */
    .quad   0, 0, 0                 /* res2..res4 */
    .ascii  "ARM\x64"               /* magic */
    .long   0                       /* res5 */

    .section .text.boot, "ax"
primary_entry:
    mov     x19, x0                 /* keep the DTB address */

    /* Only core 0 (MPIDR_EL1.Aff0..2 == 0) boots; others wait forever (Arm ARM D17.2.101). */
    mrs     x1, mpidr_el1
    and     x1, x1, #0xffffff
    cbnz    x1, park

    /* CurrentEL[3:2] (Arm ARM C5.2.1). */
    mrs     x1, CurrentEL
    lsr     x1, x1, #2
    cmp     x1, #2
    b.eq    at_el2
    cmp     x1, #3
    b.ne    park                    /* EL1: no hypervisor possible */

    /* EL3 -> EL2. SCR_EL3 (Arm ARM D17.2.117): NS=1, RES1 bits 5:4, HCE=1 (HVC enabled),
     * SMD=0, RW=1 (EL2 is AArch64). SPSR_EL3 = EL2h with DAIF masked. */
    mov     x1, #0x5b1
    msr     scr_el3, x1
    mov     x1, #0x3c9
    msr     spsr_el3, x1
    adr     x1, at_el2
    msr     elr_el3, x1
    eret

at_el2:
    /* Known EL2 state before Rust runs: MMU and caches off (SCTLR_EL2 RES1 bits only),
     * EL1 is AArch64 (HCR_EL2.RW). */
    ldr     x1, =0x30c50830
    msr     sctlr_el2, x1
    mov     x1, #(1 << 31)
    msr     hcr_el2, x1
    isb

    /* SP_EL2 is the kernel stack; SP_EL0 the emergency stack for faults in the kernel. */
    adrp    x1, __emergency_stack_top
    add     x1, x1, :lo12:__emergency_stack_top
    msr     sp_el0, x1
    adrp    x1, __stack_top
    add     x1, x1, :lo12:__stack_top
    mov     sp, x1

    /* Zero .bss (16-byte aligned by the linker script). */
    adrp    x1, __bss_start
    add     x1, x1, :lo12:__bss_start
    adrp    x2, __bss_end
    add     x2, x2, :lo12:__bss_end
1:  cmp     x1, x2
    b.hs    2f
    stp     xzr, xzr, [x1], #16
    b       1b
2:
    adrp    x1, el2_vectors
    add     x1, x1, :lo12:el2_vectors
    msr     vbar_el2, x1
    isb

    mov     x0, x19
    bl      exo_kernel_main
park:
    wfe
    b       park
"#
);

unsafe extern "C" {
    static __image_start: u8;
    static __text_end: u8;
    static __rodata_end: u8;
    static __image_end: u8;
    static __stack_top: u8;
    static __stack_guard: u8;
}

/// Addresses the linker placed, read through symbol addresses (never dereferenced).
#[derive(Clone, Copy, Debug)]
pub struct ImageLayout {
    /// First byte of the kernel image (and of its code).
    pub start: u64,
    /// End of the code (page aligned): `.rodata` starts here.
    pub text_end: u64,
    /// End of `.rodata` (page aligned): writable data starts here.
    pub rodata_end: u64,
    /// End of `.bss` and the boot stack; the boot package starts here.
    pub end: u64,
    /// Top of the EL2 stack.
    pub stack_top: u64,
    /// The unmapped page below the EL2 stack.
    pub stack_guard: u64,
}

/// The kernel image's layout.
pub fn image_layout() -> ImageLayout {
    // Taking the address of an extern static reads nothing.
    ImageLayout {
        start: (&raw const __image_start) as u64,
        text_end: (&raw const __text_end) as u64,
        rodata_end: (&raw const __rodata_end) as u64,
        end: (&raw const __image_end) as u64,
        stack_top: (&raw const __stack_top) as u64,
        stack_guard: (&raw const __stack_guard) as u64,
    }
}
