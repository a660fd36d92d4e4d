//! The machine's cores as the device tree describes them: each core's MPIDR affinity and how
//! to start it (PSCI `CPU_ON` or a spin table), numbered by [`CoreId`] with the boot core 0.
//!
//! Bindings: Linux's `Documentation/devicetree/bindings/arm/cpus.yaml` (a cpu node's `reg`
//! is its `MPIDR_EL1` affinity: Aff2..Aff0 in bits 23:0 and, with two cells, Aff3 in bits
//! 39:32; `enable-method` is `"psci"` or `"spin-table"`, the latter with a 64-bit
//! `cpu-release-addr`) and `.../arm/psci.yaml` (`method` is `"smc"` or `"hvc"`; PSCI 0.2
//! and later fix `CPU_ON`'s function ID, PSCI 0.1 names it in a `cpu_on` property).
//!
//! A tree exo cannot fully use never stops the boot: the cores that cannot be started are
//! left out, with a [`CoreWarning`] naming why, and the machine runs on the rest (at worst
//! on the boot core alone).

use crate::device_tree::{self, DeviceTree, Node};
use core::fmt;
use exo_abi::PhysAddr;

/// Most cores exo brings up; a tree naming more leaves the rest powered down.
pub const MAX_CORES: usize = exo_abi::package::MAX_CORES;

/// `MPIDR_EL1`'s affinity fields (Arm ARM, register description "MPIDR_EL1"): Aff3 (bits
/// 39:32), Aff2..Aff0 (23:0).
pub const MPIDR_AFFINITY_MASK: u64 = 0xFF_00FF_FFFF;

/// PSCI 0.2+ `CPU_ON`, SMC64 calling convention (PSCI, Arm DEN0022, "CPU_ON" and the
/// function ID table).
pub const PSCI_CPU_ON_64: u32 = 0xC400_0003;

const _: () = assert!(
    MAX_CORES.is_power_of_two(),
    "CoreId::index reduces modulo it"
);

/// A core exo runs, numbered from 0 (the boot core) in device-tree order.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct CoreId(u8);

impl CoreId {
    /// The core that booted the kernel.
    pub const BOOT: Self = Self(0);

    /// The core with this index, if below [`MAX_CORES`].
    pub const fn new(index: usize) -> Option<Self> {
        if index < MAX_CORES {
            Some(Self(index as u8))
        } else {
            None
        }
    }

    /// The index, below [`MAX_CORES`]. (Reduced modulo [`MAX_CORES`], a power of two,
    /// which changes no valid id: the compiler then knows it indexes a per-core array in
    /// bounds, and the trap path checks nothing.)
    pub const fn index(self) -> usize {
        self.0 as usize % MAX_CORES
    }
}

impl fmt::Display for CoreId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "core {}", self.0)
    }
}

/// The instruction that reaches PSCI firmware (SMC Calling Convention, Arm DEN0028, "Conduits").
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Conduit {
    /// `SMC`: firmware at EL3 (and QEMU `virt` with `virtualization=on`).
    Smc,
    /// `HVC`: a hypervisor below exo would answer; exo at EL2 cannot use it for itself.
    Hvc,
}

/// The PSCI firmware interface from `/psci`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Psci {
    /// How to call it.
    pub conduit: Conduit,
    /// `CPU_ON`'s function ID.
    pub cpu_on: u32,
}

/// How a secondary core is started.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum EnableMethod {
    /// PSCI `CPU_ON` (DEN0022, "CPU_ON").
    Psci(Psci),
    /// Write the entry point to `release` and send an event: the core polls it.
    SpinTable {
        /// The core's `cpu-release-addr`.
        release: PhysAddr,
    },
}

/// One core of the machine.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Core {
    /// Its `MPIDR_EL1` affinity ([`MPIDR_AFFINITY_MASK`] bits).
    pub mpidr: u64,
    /// How to start it; `None` for the boot core, which runs already.
    pub enable: Option<EnableMethod>,
}

/// Why a core of the tree is left out (or the tree names fewer cores than it might).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CoreWarning {
    /// `/cpus` is missing or has no enabled cpu node: the boot core runs alone.
    NoCpus,
    /// No cpu node has the boot core's MPIDR: it runs alone.
    BootCoreMissing {
        /// The boot core's affinity.
        mpidr: u64,
    },
    /// A cpu node's `reg` is missing or not one or two cells.
    BadReg,
    /// Two cpu nodes have the same MPIDR: the second is ignored.
    Duplicate {
        /// The affinity.
        mpidr: u64,
    },
    /// More than [`MAX_CORES`] cores: the rest stay down.
    TooMany {
        /// How many were left out.
        ignored: usize,
    },
    /// The core's `enable-method` is missing or one exo does not know.
    UnknownMethod {
        /// The core's affinity.
        mpidr: u64,
    },
    /// The core says `psci` but `/psci` is missing or unusable.
    NoPsci {
        /// The core's affinity.
        mpidr: u64,
    },
    /// A spin-table core without a usable `cpu-release-addr`.
    NoReleaseAddress {
        /// The core's affinity.
        mpidr: u64,
    },
}

impl fmt::Display for CoreWarning {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::NoCpus => write!(f, "the device tree lists no cpus: running on the boot core"),
            Self::BootCoreMissing { mpidr } => write!(
                f,
                "no cpu node has the boot core's MPIDR {mpidr:#x}: running on the boot core"
            ),
            Self::BadReg => write!(f, "a cpu node has no usable reg: left out"),
            Self::Duplicate { mpidr } => {
                write!(
                    f,
                    "two cpu nodes have MPIDR {mpidr:#x}: the second left out"
                )
            }
            Self::TooMany { ignored } => write!(
                f,
                "more than {MAX_CORES} cores: {ignored} left powered down"
            ),
            Self::UnknownMethod { mpidr } => write!(
                f,
                "the core with MPIDR {mpidr:#x} has no enable-method exo knows: left down"
            ),
            Self::NoPsci { mpidr } => write!(
                f,
                "the core with MPIDR {mpidr:#x} is started by PSCI but the tree has no usable \
                 /psci: left down"
            ),
            Self::NoReleaseAddress { mpidr } => write!(
                f,
                "the spin-table core with MPIDR {mpidr:#x} has no cpu-release-addr: left down"
            ),
        }
    }
}

/// The cores exo runs: the boot core first, then the startable others in tree order.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Cores {
    cores: [Core; MAX_CORES],
    len: usize,
}

impl Cores {
    /// Only the boot core, with affinity `mpidr`.
    pub fn boot_only(mpidr: u64) -> Self {
        let boot = Core {
            mpidr: mpidr & MPIDR_AFFINITY_MASK,
            enable: None,
        };
        Self {
            cores: [boot; MAX_CORES],
            len: 1,
        }
    }

    /// Reads `/cpus` and `/psci`. `boot_mpidr` is the boot core's `MPIDR_EL1`; every core
    /// the tree names but exo cannot start is reported to `warn` and left out.
    pub fn from_fdt(
        tree: &DeviceTree<'_>,
        boot_mpidr: u64,
        warn: &mut dyn FnMut(CoreWarning),
    ) -> Self {
        let boot_mpidr = boot_mpidr & MPIDR_AFFINITY_MASK;
        let mut cores = Self::boot_only(boot_mpidr);
        let Some(cpus) = tree.find_path("/cpus") else {
            warn(CoreWarning::NoCpus);
            return cores;
        };
        let psci = psci(tree);
        let (mut found, mut boot_found, mut ignored) = (0, false, 0);
        for node in cpus.node().children().filter(|node| is_cpu(*node)) {
            found += 1;
            let Some(mpidr) = reg(node) else {
                warn(CoreWarning::BadReg);
                continue;
            };
            if mpidr == boot_mpidr {
                boot_found = true;
                continue;
            }
            if cores.id_of(mpidr).is_some() {
                warn(CoreWarning::Duplicate { mpidr });
                continue;
            }
            let Some(enable) = enable_method(node, mpidr, psci, warn) else {
                continue;
            };
            if cores.len == MAX_CORES {
                ignored += 1;
                continue;
            }
            cores.cores[cores.len] = Core {
                mpidr,
                enable: Some(enable),
            };
            cores.len += 1;
        }
        if found == 0 {
            warn(CoreWarning::NoCpus);
            return Self::boot_only(boot_mpidr);
        }
        if !boot_found {
            warn(CoreWarning::BootCoreMissing { mpidr: boot_mpidr });
            return Self::boot_only(boot_mpidr);
        }
        if ignored > 0 {
            warn(CoreWarning::TooMany { ignored });
        }
        cores
    }

    /// How many cores (at least 1).
    pub fn len(&self) -> usize {
        self.len
    }

    /// Never: the boot core is always there.
    pub fn is_empty(&self) -> bool {
        false
    }

    /// The cores, the boot core first.
    pub fn iter(&self) -> impl Iterator<Item = (CoreId, &Core)> + '_ {
        self.cores[..self.len]
            .iter()
            .enumerate()
            .filter_map(|(index, core)| Some((CoreId::new(index)?, core)))
    }

    /// The core `id`, if there is one.
    pub fn get(&self, id: CoreId) -> Option<&Core> {
        self.cores[..self.len].get(id.index())
    }

    /// The core whose affinity is `mpidr` (other `MPIDR_EL1` bits ignored).
    pub fn id_of(&self, mpidr: u64) -> Option<CoreId> {
        let mpidr = mpidr & MPIDR_AFFINITY_MASK;
        self.iter()
            .find(|(_, core)| core.mpidr == mpidr)
            .map(|(id, _)| id)
    }
}

/// Whether `node` is an enabled cpu node (`device_type = "cpu"`, Devicetree Specification
/// 3.7); `cpu-map` and other children of `/cpus` are not.
fn is_cpu(node: Node<'_>) -> bool {
    let enabled = match device_tree::string(node, "status") {
        None => node.property("status").is_none(),
        Some(status) => matches!(status, "okay" | "ok"),
    };
    enabled && device_tree::string(node, "device_type") == Some("cpu")
}

/// A cpu node's `reg`: one or two cells (`/cpus` `#address-cells`), as an affinity.
fn reg(node: Node<'_>) -> Option<u64> {
    let value = node.property("reg")?;
    let cells = node.parent_cells().address as usize;
    if !(1..=2).contains(&cells) || value.len() != 4 * cells {
        return None;
    }
    let number = big_endian(value)?;
    (number & !MPIDR_AFFINITY_MASK == 0).then_some(number)
}

/// One or two big-endian cells as a number.
fn big_endian(value: &[u8]) -> Option<u64> {
    match value.len() {
        4 => Some(u64::from(u32::from_be_bytes(value.try_into().ok()?))),
        8 => Some(u64::from_be_bytes(value.try_into().ok()?)),
        _ => None,
    }
}

/// How to start the core `node` (affinity `mpidr`), or `None` after a warning.
fn enable_method(
    node: Node<'_>,
    mpidr: u64,
    psci: Option<Psci>,
    warn: &mut dyn FnMut(CoreWarning),
) -> Option<EnableMethod> {
    match device_tree::string(node, "enable-method") {
        Some("psci") => match psci {
            Some(psci) => Some(EnableMethod::Psci(psci)),
            None => {
                warn(CoreWarning::NoPsci { mpidr });
                None
            }
        },
        Some("spin-table") => {
            let release = node
                .property("cpu-release-addr")
                .and_then(big_endian)
                .filter(|&address| address != 0 && address.is_multiple_of(8));
            match release {
                Some(release) => Some(EnableMethod::SpinTable {
                    release: PhysAddr::new(release),
                }),
                None => {
                    warn(CoreWarning::NoReleaseAddress { mpidr });
                    None
                }
            }
        }
        _ => {
            warn(CoreWarning::UnknownMethod { mpidr });
            None
        }
    }
}

/// `/psci`: its conduit and `CPU_ON` ID (the fixed one from PSCI 0.2 on, else the node's
/// `cpu_on`); `None` if the node is missing or says neither.
fn psci(tree: &DeviceTree<'_>) -> Option<Psci> {
    let node = tree.find_path("/psci")?.node();
    let conduit = match device_tree::string(node, "method")? {
        "smc" => Conduit::Smc,
        "hvc" => Conduit::Hvc,
        _ => return None,
    };
    let compatible = node.property("compatible").unwrap_or_default();
    let version_2 = compatible
        .split(|&byte| byte == 0)
        .any(|name| name == b"arm,psci-0.2" || name == b"arm,psci-1.0");
    let cpu_on = if version_2 {
        PSCI_CPU_ON_64
    } else {
        device_tree::cell(node, "cpu_on")?
    };
    Some(Psci { conduit, cpu_on })
}

#[cfg(test)]
mod tests;
