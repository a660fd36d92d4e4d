//! `remap`: a library OS runs its own stage-1 MMU. It allocates a frame, binds it, and maps it
//! a second time through its own page tables (`exo_libos::mmu::alias`), at a virtual address
//! the kernel knows nothing about; a word written through either address must be read through
//! the other. With the kernel forcing stage 1 off (`HCR_EL2.DC`), the alias would be taken
//! for an IPA and fault in stage 2.

#![no_std]
#![no_main]
#![forbid(unsafe_code)]

use exo_libos::abi::BindAttributes;
use exo_libos::{Error, ExitCode, Info, PhysAddr, mem, mmu, println, probe};

exo_libos::entry!(main);

fn main(_info: &Info) -> Result<ExitCode, Error> {
    let mut frame = [PhysAddr::new(0)];
    mem::alloc(&mut frame)?;
    let ipa = mem::map(frame[0], BindAttributes::READ_WRITE)?;
    let alias = mmu::alias(ipa)?;
    probe::write_u64(ipa, 0x05EE_D0FA_11A5).map_err(|_| Error::BadAddress)?;
    let through_alias = alias.read_u64(0);
    alias.write_u64(8, 0x00D0_0D1E);
    let through_ipa = probe::read_u64(ipa.add(8)).map_err(|_| Error::BadAddress)?;
    if through_alias != 0x05EE_D0FA_11A5 || through_ipa != 0x00D0_0D1E {
        println!(
            "alias and IPA disagree: read {through_alias:#x} through the alias, \
             {through_ipa:#x} through the IPA"
        );
        return Ok(ExitCode::FAILURE);
    }
    println!(
        "VA {:#x} aliases IPA {ipa} (frame {}): each sees the other's writes",
        alias.address(),
        frame[0]
    );
    Ok(ExitCode::SUCCESS)
}
