//! Interrupts and device regions of a configuration: parsed from the partition keys
//! `interrupts` and `devices`, and checked for ownership across partitions against the
//! board's devices.
//!
//! Every refusal is a [`Refusal`]: the byte offset at fault in the configuration text and a
//! message; [`super::parse`] turns it into a [`super::ConfigError`] naming file and line.

use std::collections::HashMap;
use std::fmt;

use exo_abi::info::{KERNEL_WINDOW_END, KERNEL_WINDOW_START};
use exo_abi::package::{DEFAULT_RAM_BASE, DeviceRegion, FIRST_SPI, MAX_DEVICES, MAX_INTERRUPTS};
use exo_abi::{Ipa, PAGE_SIZE, PhysAddr};
use serde::Deserialize;
use serde::de::{self, Deserializer, MapAccess, SeqAccess, Visitor};
use serde_spanned::Spanned;

use super::{SizeValue, line_of, list};
use crate::board::{Board, GIC_CPU_INTERFACE_SIZE, Range};

/// A refused key: the byte offset at fault and why.
pub(super) type Refusal = (usize, String);

/// Last INTID of the software-generated interrupts (SGIs).
const LAST_SGI: i64 = 15;
/// Last INTID of the private peripheral interrupts (PPIs).
const LAST_PPI: i64 = 31;

/// A device region a partition owns.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct OwnedDevice {
    /// The board device's name, or `None` for a region given by address.
    pub name: Option<String>,
    /// Where it is and where the partition sees it.
    pub region: DeviceRegion,
    /// QEMU's serial port number when the device is one of QEMU's UARTs.
    pub qemu_serial: Option<u32>,
    /// Line of its entry in `devices`.
    pub line: usize,
}

/// The `interrupts` key: a list of INTIDs, each with its span.
pub(super) struct IntidList(pub Vec<Spanned<Intid>>);

/// One entry of `interrupts`: an integer (range-checked later, with a better message than
/// a type error could give).
pub(super) struct Intid(pub i64);

impl<'de> Deserialize<'de> for Intid {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct IntidVisitor;
        impl Visitor<'_> for IntidVisitor {
            type Value = Intid;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("an interrupt number (an integer INTID, such as 48)")
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<Intid, E> {
                Ok(Intid(v))
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<Intid, E> {
                Ok(Intid(i64::try_from(v).unwrap_or(i64::MAX)))
            }
        }
        deserializer.deserialize_any(IntidVisitor)
    }
}

impl<'de> Deserialize<'de> for IntidList {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct ListVisitor;
        impl<'de> Visitor<'de> for ListVisitor {
            type Value = IntidList;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a list of interrupt numbers (integer INTIDs), such as [48, 49]")
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<IntidList, A::Error> {
                let mut items = Vec::new();
                while let Some(item) = seq.next_element()? {
                    items.push(item);
                }
                Ok(IntidList(items))
            }
        }
        deserializer.deserialize_any(ListVisitor)
    }
}

/// The `devices` key: board device names and explicit regions, each with its span.
pub(super) struct DeviceList(pub Vec<Spanned<DeviceEntry>>);

/// One entry of `devices`.
pub(super) enum DeviceEntry {
    /// A device the board file declares, by name.
    Named(String),
    /// A region given by address.
    Region(RawRegion),
}

/// `{ base = 0x0904_0000, size = "4KiB", ipa = 0x0904_0000 }`.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawRegion {
    base: Spanned<i64>,
    size: Spanned<SizeValue>,
    ipa: Option<Spanned<i64>>,
}

impl<'de> Deserialize<'de> for DeviceEntry {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct EntryVisitor;
        impl<'de> Visitor<'de> for EntryVisitor {
            type Value = DeviceEntry;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(
                    "a board device's name (such as \"uart1\") or a region such as \
                     { base = 0x0904_0000, size = \"4KiB\" }",
                )
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<DeviceEntry, E> {
                Ok(DeviceEntry::Named(v.to_owned()))
            }
            fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<DeviceEntry, A::Error> {
                RawRegion::deserialize(de::value::MapAccessDeserializer::new(map))
                    .map(DeviceEntry::Region)
            }
        }
        deserializer.deserialize_any(EntryVisitor)
    }
}

impl<'de> Deserialize<'de> for DeviceList {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct ListVisitor;
        impl<'de> Visitor<'de> for ListVisitor {
            type Value = DeviceList;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(
                    "a list of board device names or regions, such as [\"uart1\"] or \
                     [{ base = 0x0904_0000, size = \"4KiB\" }]",
                )
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<DeviceList, A::Error> {
                let mut items = Vec::new();
                while let Some(item) = seq.next_element()? {
                    items.push(item);
                }
                Ok(DeviceList(items))
            }
        }
        deserializer.deserialize_any(ListVisitor)
    }
}

/// Who owns an interrupt, a device or a region.
#[derive(Clone, Debug)]
struct Owner {
    /// The partition.
    partition: String,
    /// The line where it claimed it.
    line: usize,
    /// The board device it came with, if any.
    device: Option<String>,
}

impl Owner {
    /// ` (line N)` or ` (line N, with device `x`)`, for messages.
    fn at(&self) -> String {
        match &self.device {
            Some(device) => format!(" (line {}, with device `{device}`)", self.line),
            None => format!(" (line {})", self.line),
        }
    }
}

/// What the partitions checked so far own: every new claim is checked against it.
#[derive(Default)]
pub(super) struct Claims {
    interrupts: HashMap<u32, Owner>,
    devices: HashMap<String, Owner>,
    regions: Vec<(Range, Owner, String)>,
}

/// One partition's checked interrupts and devices.
pub(super) struct Resources {
    /// SPIs, its devices' first, then its `interrupts`, in order.
    pub interrupts: Vec<u32>,
    /// Device regions, in order.
    pub devices: Vec<OwnedDevice>,
}

/// The partition being checked, for [`claim`].
pub(super) struct Claimant<'a> {
    /// Its name.
    pub name: &'a str,
    /// The board it runs on.
    pub board: &'a Board,
    /// The whole configuration text, to turn offsets into lines.
    pub text: &'a str,
    /// Its `trusted_dma`: it may own DMA-capable devices.
    pub trusted_dma: bool,
}

/// Checks partition `who`'s `devices` and `interrupts` against the board and what earlier
/// partitions own (`claims`, which grows by what it takes).
pub(super) fn claim(
    claims: &mut Claims,
    who: &Claimant<'_>,
    devices: Option<&DeviceList>,
    interrupts: Option<&IntidList>,
) -> Result<Resources, Refusal> {
    let mut taken = Resources {
        interrupts: Vec::new(),
        devices: Vec::new(),
    };
    for (index, entry) in devices.map_or(&[][..], |d| &d.0).iter().enumerate() {
        let at = entry.span().start;
        if index == MAX_DEVICES {
            return Err((
                at,
                format!(
                    "partition `{}` has more than {MAX_DEVICES} device regions, the most a \
                     partition may own",
                    who.name
                ),
            ));
        }
        let device = match entry.get_ref() {
            DeviceEntry::Named(name) => named_device(claims, who, name, at)?,
            DeviceEntry::Region(raw) => explicit_region(who, raw, at)?,
        };
        check_dma(who, &device, at)?;
        check_region(claims, who, &taken.devices, &device, at)?;
        let owner = Owner {
            partition: who.name.to_owned(),
            line: device.line,
            device: device.name.clone(),
        };
        let region = Range::at(device.region.phys.raw(), device.region.size);
        let what = match &device.name {
            Some(name) => format!("device `{name}` at {region}"),
            None => format!("region {region}"),
        };
        claims.regions.push((region, owner.clone(), what));
        if let Some(name) = &device.name {
            claims.devices.insert(name.clone(), owner.clone());
            let board_device = who.board.device(name).map(|d| d.interrupts.clone());
            for intid in board_device.unwrap_or_default() {
                if let Some(first) = claims.interrupts.get(&intid) {
                    return Err((
                        at,
                        format!(
                            "device `{name}` brings INTID {intid}, which partition `{}` \
                             already owns{}",
                            first.partition,
                            first.at()
                        ),
                    ));
                }
                take_interrupt(claims, who, &mut taken.interrupts, intid, &owner, at)?;
            }
        }
        taken.devices.push(device);
    }

    let mut listed: HashMap<u32, usize> = HashMap::new();
    for spanned in interrupts.map_or(&[][..], |i| &i.0) {
        let at = spanned.span().start;
        let line = line_of(who.text, at);
        let intid = check_intid(who.board, spanned.get_ref().0).map_err(|m| (at, m))?;
        if let Some(first) = listed.insert(intid, line) {
            return Err((
                at,
                format!(
                    "INTID {intid} is listed twice in `interrupts` of `{}` (first on line \
                     {first})",
                    who.name
                ),
            ));
        }
        if let Some(first) = claims.interrupts.get(&intid) {
            let message = if first.partition == who.name {
                format!(
                    "INTID {intid} is listed twice: partition `{}` already owns it{}; leave \
                     it out of `interrupts`",
                    who.name,
                    first.at()
                )
            } else {
                format!(
                    "INTID {intid} of `{}` is already owned by partition `{}`{}: an \
                     interrupt has one owner",
                    who.name,
                    first.partition,
                    first.at()
                )
            };
            return Err((at, message));
        }
        let owner = Owner {
            partition: who.name.to_owned(),
            line,
            device: None,
        };
        take_interrupt(claims, who, &mut taken.interrupts, intid, &owner, at)?;
    }
    Ok(taken)
}

/// Records `intid` as `owner`'s, refusing the one past [`MAX_INTERRUPTS`].
fn take_interrupt(
    claims: &mut Claims,
    who: &Claimant<'_>,
    interrupts: &mut Vec<u32>,
    intid: u32,
    owner: &Owner,
    at: usize,
) -> Result<(), Refusal> {
    if interrupts.len() == MAX_INTERRUPTS {
        return Err((
            at,
            format!(
                "partition `{}` owns more than {MAX_INTERRUPTS} interrupts (its devices' \
                 included), the most a partition may own",
                who.name
            ),
        ));
    }
    interrupts.push(intid);
    claims.interrupts.insert(intid, owner.clone());
    Ok(())
}

/// Checks that `value` is an SPI of `board` that the kernel does not keep.
fn check_intid(board: &Board, value: i64) -> Result<u32, String> {
    let spis = format!(
        "a partition may own only SPIs, INTIDs {FIRST_SPI}..={} on board `{}`",
        board.gic.max_intid, board.name
    );
    match value {
        0..=LAST_SGI => {
            return Err(format!(
                "INTID {value} is an SGI (0-15: software-generated, between cores; the \
                 kernel's signals to partitions use them): {spis}"
            ));
        }
        16..=LAST_PPI => {
            return Err(format!(
                "INTID {value} is a PPI (16-31: private to each core; every partition already \
                 has its virtual timer, 27): {spis}"
            ));
        }
        _ => {}
    }
    let intid = u32::try_from(value)
        .ok()
        .filter(|n| *n <= board.gic.max_intid)
        .ok_or_else(|| format!("INTID {value} does not exist: {spis}"))?;
    if let Some(device) = board
        .reserved_devices()
        .find(|d| d.interrupts.contains(&intid))
    {
        return Err(format!(
            "INTID {intid} is the kernel's own: it is the interrupt of `{}`, {} (board `{}`)",
            device.name,
            device.reserved.as_deref().unwrap_or_default(),
            board.name
        ));
    }
    Ok(intid)
}

/// A board device named in `devices`.
fn named_device(
    claims: &Claims,
    who: &Claimant<'_>,
    name: &str,
    at: usize,
) -> Result<OwnedDevice, Refusal> {
    let board = who.board;
    let Some(device) = board.device(name) else {
        let ownable = board.ownable_devices();
        let offer = if ownable.is_empty() {
            format!(
                "board `{}` declares no devices a partition may own",
                board.name
            )
        } else {
            format!(
                "devices of board `{}` a partition may own are {}",
                board.name,
                list(&ownable)
            )
        };
        return Err((
            at,
            format!(
                "unknown device `{name}`: {offer} (or give a region: {{ base = ..., size = \
                 ... }})"
            ),
        ));
    };
    if let Some(why) = &device.reserved {
        return Err((
            at,
            format!("device `{name}` is the kernel's own ({why}): no partition may own it"),
        ));
    }
    if let Some(first) = claims.devices.get(name) {
        let message = if first.partition == who.name {
            format!(
                "device `{name}` is listed twice in `devices` of `{}` (first on line {})",
                who.name, first.line
            )
        } else {
            format!(
                "device `{name}` of `{}` is already owned by partition `{}` (line {}): a \
                 device has one owner",
                who.name, first.partition, first.line
            )
        };
        return Err((at, message));
    }
    Ok(OwnedDevice {
        name: Some(name.to_owned()),
        region: DeviceRegion {
            phys: PhysAddr::new(device.base),
            ipa: Ipa::new(device.base),
            size: device.size,
        },
        qemu_serial: device.qemu_serial,
        line: line_of(who.text, at),
    })
}

/// A region given by address in `devices`: alignment, RAM and the kernel's devices.
fn explicit_region(who: &Claimant<'_>, raw: &RawRegion, at: usize) -> Result<OwnedDevice, Refusal> {
    let board = who.board;
    let address = |key: &Spanned<i64>, what: &str| -> Result<u64, Refusal> {
        let value = u64::try_from(*key.get_ref()).map_err(|_| {
            (
                key.span().start,
                format!("device region {what} must not be negative"),
            )
        })?;
        if !value.is_multiple_of(PAGE_SIZE) {
            return Err((
                key.span().start,
                format!("device region {what} {value:#x} is not page aligned (4 KiB)"),
            ));
        }
        Ok(value)
    };
    let base = address(&raw.base, "base")?;
    let ipa = match &raw.ipa {
        Some(key) => address(key, "ipa")?,
        None => base,
    };
    let size_at = raw.size.span().start;
    let size = raw.size.get_ref().bytes().map_err(|m| (size_at, m))?;
    if size == 0 {
        return Err((size_at, "device region size must not be zero".to_owned()));
    }
    if !size.is_multiple_of(PAGE_SIZE) {
        return Err((
            size_at,
            format!("device region size of {size} bytes is not a multiple of 4 KiB"),
        ));
    }
    if base.checked_add(size).is_none() || ipa.checked_add(size).is_none() {
        return Err((size_at, format!("device region of {size} bytes wraps")));
    }
    let region = Range::at(base, size);
    if region.overlaps(&board.ram()) {
        return Err((
            at,
            format!(
                "device region {region} overlaps the RAM of board `{}` ({}): a device region \
                 must be MMIO",
                board.name,
                board.ram()
            ),
        ));
    }
    if let Some(device) = board
        .reserved_devices()
        .find(|d| region.overlaps(&Range::at(d.base, d.size)))
    {
        return Err((
            at,
            format!(
                "device region {region} overlaps `{}` at {}, which the kernel keeps: {} (board \
                 `{}`)",
                device.name,
                Range::at(device.base, device.size),
                device.reserved.as_deref().unwrap_or_default(),
                board.name
            ),
        ));
    }
    Ok(OwnedDevice {
        name: None,
        region: DeviceRegion {
            phys: PhysAddr::new(base),
            ipa: Ipa::new(ipa),
            size,
        },
        qemu_serial: None,
        line: line_of(who.text, at),
    })
}

/// Refuses a DMA-capable device (named, or overlapped by a region) to a partition that
/// does not say `trusted_dma = true`.
fn check_dma(who: &Claimant<'_>, device: &OwnedDevice, at: usize) -> Result<(), Refusal> {
    if who.trusted_dma {
        return Ok(());
    }
    let region = Range::at(device.region.phys.raw(), device.region.size);
    let Some(dma) = who.board.dma_device_in(region) else {
        return Ok(());
    };
    let what = match &device.name {
        Some(name) => format!("device `{name}`"),
        None => format!("region {region}, which overlaps device `{}`,", dma.name),
    };
    Err((
        at,
        format!(
            "{what} of partition `{}` can master DMA (board `{}` marks `{}` at {} `dma = \
             true`): its own memory accesses bypass stage 2 and no IOMMU confines them, so \
             the partition could read and write all RAM, the kernel's \
             included; give the partition `trusted_dma = true` if you trust it that far",
            who.name,
            who.board.name,
            dma.name,
            Range::at(dma.base, dma.size)
        ),
    ))
}

/// Checks a device region against other partitions' regions (physical addresses) and the
/// partition's own IPA space: below the kernel's window, apart from its other regions and
/// from the GICv2 CPU interface.
fn check_region(
    claims: &Claims,
    who: &Claimant<'_>,
    own: &[OwnedDevice],
    device: &OwnedDevice,
    at: usize,
) -> Result<(), Refusal> {
    let region = device.region;
    let phys = Range::at(region.phys.raw(), region.size);
    let this = match &device.name {
        Some(name) => format!("device `{name}` at {phys}"),
        None => format!("device region {phys}"),
    };
    if let Some((_, owner, what)) = claims.regions.iter().find(|(r, ..)| r.overlaps(&phys)) {
        let whose = if owner.partition == who.name {
            "its own".to_owned()
        } else {
            format!("partition `{}`'s", owner.partition)
        };
        return Err((
            at,
            format!(
                "{this} of `{}` overlaps {whose} {what} (line {}): a device region has one \
                 owner",
                who.name, owner.line
            ),
        ));
    }
    let ipa = Range::at(region.ipa.raw(), region.size);
    if ipa.end > KERNEL_WINDOW_START.raw() {
        return Err((
            at,
            format!(
                "{this} is seen at IPA {ipa}: device IPAs must end by {KERNEL_WINDOW_START} \
                 (the kernel's IPA window {KERNEL_WINDOW_START}..{KERNEL_WINDOW_END} and guest \
                 RAM from {DEFAULT_RAM_BASE} up are off limits); give the region an `ipa` \
                 below it"
            ),
        ));
    }
    if let Some(other) = own
        .iter()
        .find(|d| Range::at(d.region.ipa.raw(), d.region.size).overlaps(&ipa))
    {
        return Err((
            at,
            format!(
                "{this} is seen at IPA {ipa}, which overlaps the IPA {} of `{}`'s region on \
                 line {}",
                Range::at(other.region.ipa.raw(), other.region.size),
                who.name,
                other.line
            ),
        ));
    }
    if let Some(gicc) = who.board.gic.cpu_interface {
        let gicc = Range::at(gicc, GIC_CPU_INTERFACE_SIZE);
        if ipa.overlaps(&gicc) {
            return Err((
                at,
                format!(
                    "{this} is seen at IPA {ipa}, which overlaps IPA {gicc}, where a partition \
                     sees its GIC CPU interface on board `{}` (GICv2)",
                    who.board.name
                ),
            ));
        }
    }
    Ok(())
}
