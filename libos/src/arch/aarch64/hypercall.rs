//! The raw hypercall instruction: `HVC #0` with the SMCCC 1.1 register convention. What the
//! calls mean is `crate`-level business (`exo_abi::call` names them); this is only the trap.

/// Issues `HVC #0` with `function` in `w0` and `args` in `x1`.., returning `x0` (SMCCC 1.1).
pub(crate) fn hvc(function: u32, args: [u64; 6]) -> u64 {
    hvc4(function, args)[0]
}

/// Issues `HVC #0` like [`hvc`] and returns `x0`..`x3`, for calls with several results.
pub(crate) fn hvc4(function: u32, args: [u64; 6]) -> [u64; 4] {
    let [a1, a2, a3, a4, a5, a6] = args;
    let r = hvc8(function, [a1, a2, a3, a4, a5, a6, 0, 0]);
    [r[0], r[1], r[2], r[3]]
}

/// Issues `HVC #0` with `function` in `w0` and eight arguments in `x1`..`x8`, returning
/// `x0`..`x7`: for the protected control transfer calls, which carry seven words each way.
///
/// The registers are passed as registers: no argument array is built in memory (a 17-word
/// one, zeroed with SIMD stores, cost every call an FP/SIMD use and with it, under the
/// kernel's lazy FP/SIMD switch, a trap after every world switch).
#[inline(always)]
pub(crate) fn hvc8(function: u32, args: [u64; 8]) -> [u64; 8] {
    let [a1, a2, a3, a4, a5, a6, a7, a8] = args;
    let (r0, r1, r2, r3, r4, r5, r6, r7): (u64, u64, u64, u64, u64, u64, u64, u64);
    // SAFETY: an SMCCC call to exo's kernel (HVC #0): it reads x0..x8, writes at most
    // x0..x7 (SMCCC 1.1 lets it change x4..x17, so x8..x17 are declared clobbered too) and
    // may write memory the call's arguments name, as any function call may; it returns to
    // the next instruction with everything else as it was (an upcall in between returns
    // through EXO_UPCALL_RETURN with every register restored).
    unsafe {
        core::arch::asm!(
            "hvc #0",
            inlateout("x0") u64::from(function) => r0,
            inlateout("x1") a1 => r1,
            inlateout("x2") a2 => r2,
            inlateout("x3") a3 => r3,
            inlateout("x4") a4 => r4,
            inlateout("x5") a5 => r5,
            inlateout("x6") a6 => r6,
            inlateout("x7") a7 => r7,
            inlateout("x8") a8 => _,
            lateout("x9") _, lateout("x10") _, lateout("x11") _, lateout("x12") _,
            lateout("x13") _, lateout("x14") _, lateout("x15") _, lateout("x16") _,
            lateout("x17") _,
            options(nostack),
        );
    }
    [r0, r1, r2, r3, r4, r5, r6, r7]
}
