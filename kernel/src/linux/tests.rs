use super::*;

const fn reg(op0: u8, op1: u8, crn: u8, crm: u8, op2: u8) -> Encoding {
    Encoding {
        op0,
        op1,
        crn,
        crm,
        op2,
    }
}

#[test]
fn what_linux_touches_at_boot_reads_as_zero() {
    let boot = [
        ("MDSCR_EL1", reg(2, 0, 0, 2, 2)),
        ("OSLAR_EL1", reg(2, 0, 1, 0, 4)),
        ("OSDLR_EL1", reg(2, 0, 1, 3, 4)),
        ("PMUSERENR_EL0", reg(3, 3, 9, 14, 0)),
        ("PMCR_EL0", reg(3, 3, 9, 12, 0)),
        ("PMINTENCLR_EL1", reg(3, 0, 9, 14, 2)),
        ("PMEVTYPER0_EL0", reg(3, 3, 14, 12, 0)),
        ("PMCCFILTR_EL0", reg(3, 3, 14, 15, 7)),
    ];
    for (name, encoding) in boot {
        for read in [true, false] {
            assert_eq!(
                system_register(encoding, read, 0),
                SystemRegisterAction::ReadAsZero,
                "{name}"
            );
        }
    }
}

#[test]
fn sgis_reach_the_partition_only_when_they_target_its_vcpu() {
    let sgi1r = reg(3, 0, 12, 11, 5);
    let to = |value| system_register(sgi1r, false, value);
    assert_eq!(
        to(3 << 24 | 1),
        SystemRegisterAction::Sgi {
            intid: 3,
            to_self: true
        }
    );
    // Another vCPU of the list, another affinity, or "every other PE": nobody here.
    assert_eq!(
        to(3 << 24 | 2),
        SystemRegisterAction::Sgi {
            intid: 3,
            to_self: false
        }
    );
    assert_eq!(
        to(1 << 16 | 1),
        SystemRegisterAction::Sgi {
            intid: 0,
            to_self: false
        }
    );
    assert_eq!(
        to(1 << 32 | 1),
        SystemRegisterAction::Sgi {
            intid: 0,
            to_self: false
        }
    );
    assert_eq!(
        to(1 << 48 | 1),
        SystemRegisterAction::Sgi {
            intid: 0,
            to_self: false
        }
    );
    assert_eq!(
        to(1 << 40 | 1),
        SystemRegisterAction::Sgi {
            intid: 0,
            to_self: false
        }
    );
    // Reading the SGI register, or any other system register, is not served.
    assert_eq!(
        system_register(sgi1r, true, 0),
        SystemRegisterAction::Unhandled
    );
    assert_eq!(
        system_register(reg(3, 0, 1, 0, 0), false, 0),
        SystemRegisterAction::Unhandled
    );
    assert_eq!(
        system_register(reg(3, 4, 14, 2, 1), false, 0),
        SystemRegisterAction::Unhandled
    );
}

#[test]
fn the_redistributor_shows_one_vcpu_and_nothing_more() {
    assert_eq!(redistributor_read(0x0008, Width::Double), 0x10);
    assert_eq!(redistributor_read(0x0008, Width::Word), 0x10);
    assert_eq!(redistributor_read(0x000C, Width::Word), 0);
    assert_eq!(redistributor_read(0xFFE8, Width::Word), 0x3B);
    for offset in [0x0000, 0x0014, 0x1_0100, 0x1_0400, 0x1_FFE8] {
        assert_eq!(redistributor_read(offset, Width::Word), 0, "{offset:#x}");
    }
}
