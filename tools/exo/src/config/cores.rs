//! Which core each partition runs on (the partition key `cores`) and each core's time-slice
//! vector (`[system] schedule`, a plain list for core 0 or a table of per-core lists). Each
//! refusal is a [`Refusal`] naming the byte offset at fault.

use std::fmt;

use exo_abi::package::MAX_SLOTS;
use serde::Deserialize;
use serde::de::{Deserializer, MapAccess, SeqAccess, Visitor};
use serde_spanned::Spanned;

use super::list;
use super::resources::Refusal;

/// One time-slice vector as written: partition names, each with its place in the text.
type Slots = Vec<Spanned<String>>;

/// `[system] schedule` as written: core 0's list, or `[system.schedule]` with one list per
/// core, keyed by core number.
#[derive(Debug)]
pub(super) enum ScheduleKey {
    /// `schedule = ["a", "b"]`: core 0's vector.
    CoreZero(Slots),
    /// `[system.schedule]` `0 = ["a"]`, `1 = ["b"]`: (core key, its vector), as written.
    PerCore(Vec<(Spanned<String>, Spanned<Slots>)>),
}

impl<'de> Deserialize<'de> for ScheduleKey {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct ScheduleVisitor;
        impl<'de> Visitor<'de> for ScheduleVisitor {
            type Value = ScheduleKey;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a list of partition names, or a table of them keyed by core")
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<ScheduleKey, A::Error> {
                let mut slots = Vec::new();
                while let Some(slot) = seq.next_element()? {
                    slots.push(slot);
                }
                Ok(ScheduleKey::CoreZero(slots))
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<ScheduleKey, A::Error> {
                let mut cores = Vec::new();
                while let Some(core) = map.next_key()? {
                    cores.push((core, map.next_value()?));
                }
                Ok(ScheduleKey::PerCore(cores))
            }
        }
        deserializer.deserialize_any(ScheduleVisitor)
    }
}

/// A partition's `cores`: the one core it is pinned to (0 when absent), below `cores`, the
/// cores the system starts.
pub(super) fn partition_core(
    key: Option<&Spanned<Vec<Spanned<i64>>>>,
    name: &str,
    cores: u32,
) -> Result<u32, Refusal> {
    let Some(key) = key else {
        return Ok(0);
    };
    let listed = key.get_ref();
    let Some(first) = listed.first() else {
        return Err((
            key.span().start,
            format!("`cores` of `{name}` is empty: name the core it runs on, as in `cores = [0]`"),
        ));
    };
    if let Some(second) = listed.get(1) {
        return Err((
            second.span().start,
            format!(
                "`cores` of `{name}` names {} cores: several vCPUs per partition are not \
                 supported yet; give one core",
                listed.len()
            ),
        ));
    }
    u32::try_from(*first.get_ref())
        .ok()
        .filter(|core| *core < cores)
        .ok_or_else(|| {
            (
                first.span().start,
                format!(
                    "partition `{name}` is pinned to core {}, but the system has {} (`[system] \
                     cores`)",
                    first.get_ref(),
                    core_count(cores)
                ),
            )
        })
}

/// Resolves `[system] schedule` against the partitions' `names` and the core each is
/// pinned to (`pinned`): one time-slice vector per core (`cores` of them), partition
/// indices; an empty vector is that core's default, one slot per partition pinned there.
/// `key_at` is the offset of the key's value.
pub(super) fn schedules(
    key: Option<&ScheduleKey>,
    key_at: usize,
    names: &[String],
    pinned: &[u32],
    cores: u32,
) -> Result<Vec<Vec<u8>>, Refusal> {
    let mut vectors = vec![Vec::new(); cores as usize];
    match key {
        None => {}
        Some(ScheduleKey::CoreZero(slots)) => {
            let at = Vectors { names, pinned };
            vectors[0] = at.vector(slots, key_at, 0, "`schedule`")?;
        }
        Some(ScheduleKey::PerCore(listed)) => {
            let at = Vectors { names, pinned };
            for (core_key, slots) in listed {
                let core = core_number(core_key, cores)?;
                let what = format!("`schedule` of core {core}");
                vectors[core as usize] =
                    at.vector(slots.get_ref(), slots.span().start, core, &what)?;
            }
        }
    }
    Ok(vectors)
}

/// The core a `[system.schedule]` key names, below `cores`.
fn core_number(key: &Spanned<String>, cores: u32) -> Result<u32, Refusal> {
    let text = key.get_ref();
    let core: u32 = text.parse().map_err(|_| {
        (
            key.span().start,
            format!("`schedule` key `{text}` is not a core number: use 0, 1, ..."),
        )
    })?;
    if core >= cores {
        return Err((
            key.span().start,
            format!(
                "`schedule` names core {core}, but the system has {} (`[system] cores`)",
                core_count(cores)
            ),
        ));
    }
    Ok(core)
}

/// The partitions one vector may name.
struct Vectors<'a> {
    names: &'a [String],
    pinned: &'a [u32],
}

impl Vectors<'_> {
    /// Core `core`'s vector `slots` (called `what` in messages): every partition it names
    /// exists and is pinned to `core`, and every partition pinned to `core` has a slot.
    fn vector(
        &self,
        slots: &[Spanned<String>],
        key_at: usize,
        core: u32,
        what: &str,
    ) -> Result<Vec<u8>, Refusal> {
        if slots.is_empty() {
            return Err((
                key_at,
                format!(
                    "{what} is empty: list partition names, one per time slice, or leave it \
                     out for one slot per partition in order"
                ),
            ));
        }
        if let Some(extra) = slots.get(MAX_SLOTS) {
            return Err((
                extra.span().start,
                format!(
                    "{what} has {} slots, at most {MAX_SLOTS} are supported",
                    slots.len()
                ),
            ));
        }
        let mut vector = Vec::with_capacity(slots.len());
        for slot in slots {
            vector.push(self.slot(slot, core, what)?);
        }
        for (index, name) in self.names.iter().enumerate() {
            let here = self.pinned[index] == core;
            if here && !vector.iter().any(|&slot| usize::from(slot) == index) {
                return Err((
                    key_at,
                    format!(
                        "partition `{name}` has no slot in {what}: it would never run unless \
                         another partition donated its time; give it at least one slot"
                    ),
                ));
            }
        }
        Ok(vector)
    }

    /// The index of the partition `slot` names, pinned to `core`.
    fn slot(&self, slot: &Spanned<String>, core: u32, what: &str) -> Result<u8, Refusal> {
        let name = slot.get_ref();
        let at = slot.span().start;
        let index = self.names.iter().position(|n| n == name).ok_or_else(|| {
            (
                at,
                format!(
                    "{what} names `{name}`, which is not a partition of this system: \
                     partitions are {}",
                    list(self.names)
                ),
            )
        })?;
        if self.pinned[index] != core {
            return Err((
                at,
                format!(
                    "{what} names `{name}`, which is pinned to core {} (its `cores`), not \
                     core {core}",
                    self.pinned[index]
                ),
            ));
        }
        // At most MAX_PARTITIONS (64) partitions, so an index fits a byte.
        Ok(u8::try_from(index).unwrap_or(u8::MAX))
    }
}

/// "1 core", "4 cores".
fn core_count(cores: u32) -> String {
    if cores == 1 {
        "1 core".to_owned()
    } else {
        format!("{cores} cores")
    }
}
