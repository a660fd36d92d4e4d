//! First instructions: the arm64 Image header, the climb down from EL3 if needed, parking
//! of cores that enter the image themselves, the boot stack and `.bss`, then Rust; and the
//! entry of the secondary cores the boot core starts (`cores.rs`), with their stacks.
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

    /* Only core 0 (MPIDR_EL1.Aff0..2 == 0) boots; others entering here wait forever (Arm ARM
     * D17.2.101): secondary cores are started later, at secondary_entry (cores.rs). */
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

/// Size of a secondary core's EL2 stack (the boot core's is in the linker script).
pub const CORE_STACK_SIZE: u64 = 0x1_0000;
/// Size of a secondary core's emergency stack, for faults inside the kernel.
pub const CORE_EMERGENCY_SIZE: u64 = 0x4000;
/// One secondary core's slot in `.core_stacks`: an unmapped guard page, the EL2 stack
/// above it, the emergency stack above that.
pub const CORE_SLOT_SIZE: u64 = 0x1000 + CORE_STACK_SIZE + CORE_EMERGENCY_SIZE;
/// Secondary cores with a stack slot: cores 1 to `MAX_CORES - 1`.
const SECONDARY_SLOTS: u64 = crate::cpus::MAX_CORES as u64 - 1;

// Secondary cores enter here from PSCI CPU_ON (DEN0022, "CPU_ON", implementation
// responsibilities: MMU and caches off, at the caller's exception level, x0 = context_id)
// or from a spin table (the Linux arm64 boot protocol's spin-table method: the same state,
// x0 = 0). Which core it is comes from MPIDR_EL1 and the table `cores::start` wrote (and
// cleaned to the point of coherency) before starting any core. With the MMU still off,
// every data access is Device memory (Arm ARM, "The effects of disabling an address
// translation stage"), so the core turns the boot core's EL2 map on before touching its
// stack: then everything it reads or writes is coherent with the other cores.
core::arch::global_asm!(
    r#"
    .section .text.boot, "ax"
    .global exo_secondary_entry
exo_secondary_entry:
    msr     daifset, #0xf
    mrs     x1, CurrentEL
    lsr     x1, x1, #2
    cmp     x1, #2
    b.eq    secondary_at_el2
    cmp     x1, #3
    b.ne    secondary_park
    /* EL3 -> EL2 as for the boot core. */
    mov     x1, #0x5b1
    msr     scr_el3, x1
    mov     x1, #0x3c9
    msr     spsr_el3, x1
    adr     x1, secondary_at_el2
    msr     elr_el3, x1
    eret

secondary_at_el2:
    ldr     x1, =0x30c50830
    msr     sctlr_el2, x1
    mov     x1, #(1 << 31)
    msr     hcr_el2, x1
    isb

    /* x5 = this core's index: its MPIDR affinity's slot in the handoff's table (core 0 is
     * the boot core, never started here); not found: park. */
    mrs     x2, mpidr_el1
    ldr     x3, ={affinity}
    and     x2, x2, x3
    adrp    x4, exo_secondary_handoff
    add     x4, x4, :lo12:exo_secondary_handoff
    mov     x5, #1
1:  cmp     x5, #{cores}
    b.hs    secondary_park
    add     x6, x4, #{mpidrs}
    ldr     x6, [x6, x5, lsl #3]
    cmp     x6, x2
    b.eq    2f
    add     x5, x5, #1
    b       1b
2:
    /* The boot core's EL2 map: MAIR_EL2, TCR_EL2, TTBR0_EL2, then SCTLR_EL2 (mmu.rs). */
    ldp     x6, x7, [x4]
    msr     mair_el2, x6
    msr     tcr_el2, x7
    ldp     x6, x7, [x4, #16]
    msr     ttbr0_el2, x6
    dsb     ish
    isb
    tlbi    alle2
    dsb     ish
    isb
    msr     sctlr_el2, x7
    isb

    /* Stacks: slot (index - 1) of .core_stacks; SP_EL2 above the guard page, SP_EL0 (the
     * emergency stack) above the stack. */
    adrp    x1, __core_stacks
    add     x1, x1, :lo12:__core_stacks
    sub     x2, x5, #1
    ldr     x3, ={slot}
    madd    x1, x2, x3, x1
    ldr     x3, ={stack_top}
    add     x1, x1, x3
    mov     sp, x1
    ldr     x3, ={emergency}
    add     x1, x1, x3
    msr     sp_el0, x1

    adrp    x1, el2_vectors
    add     x1, x1, :lo12:el2_vectors
    msr     vbar_el2, x1
    isb

    mov     x0, x5
    bl      exo_secondary_main
secondary_park:
    wfe
    b       secondary_park

    /* The secondary cores' stacks, after the boot core's (kernel-sections.ld). */
    .section .core_stacks, "aw", %nobits
    .balign 4096
    .global __core_stacks
__core_stacks:
    .space {slots_size}
    .global __core_stacks_end
__core_stacks_end:
"#,
    affinity = const crate::cpus::MPIDR_AFFINITY_MASK,
    cores = const crate::cpus::MAX_CORES,
    mpidrs = const core::mem::offset_of!(super::cores::Handoff, mpidr),
    slot = const CORE_SLOT_SIZE,
    stack_top = const 0x1000 + CORE_STACK_SIZE,
    emergency = const CORE_EMERGENCY_SIZE,
    slots_size = const CORE_SLOT_SIZE * SECONDARY_SLOTS,
);

unsafe extern "C" {
    fn exo_secondary_entry();
    static __core_stacks: u8;
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

/// The physical address where secondary cores enter the kernel (identity mapped).
pub fn secondary_entry() -> u64 {
    exo_secondary_entry as *const () as u64
}

/// The guard page below secondary core `index`'s stack (`index` in 1..MAX_CORES).
fn core_stack_guard(index: u64) -> u64 {
    (&raw const __core_stacks) as u64 + (index - 1) * CORE_SLOT_SIZE
}

/// The top of core `core`'s EL2 stack (where `secondary_entry` set it, or the boot core's).
pub fn core_stack_top(core: crate::cpus::CoreId) -> u64 {
    match core.index() as u64 {
        0 => (&raw const __stack_top) as u64,
        index => core_stack_guard(index) + 0x1000 + CORE_STACK_SIZE,
    }
}

/// Every unmapped stack guard page: the boot core's, then the secondary cores'.
pub fn stack_guards() -> impl Iterator<Item = u64> {
    let boot = (&raw const __stack_guard) as u64;
    core::iter::once(boot).chain((1..=SECONDARY_SLOTS).map(core_stack_guard))
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
