//! Sample lines guests print after their timed sections, and the revocation points built
//! from them (format and phases: docs/benchmarks.md).
//!
//! A sample line is `[<partition>] sample <kind> <key>=<value> ...` with integer values
//! except where a word is expected (`holdings=large`). `revdriver` prints one `claim` per
//! timed claim (`holdings`, `frames`, `rep`, `start`, `end`: counter ticks around the
//! claim); `revborrower` one `answer` per revocation request its library OS answered
//! (`seq`, `issued`, `deadline`, `entered`, `chosen`, `released`, `acknowledged`, `owed`,
//! `frames`, `held`). An answer belongs to the claim whose interval holds its `issued`.

use std::collections::BTreeMap;

use serde::Serialize;

use super::stats::Stats;

/// One sample line.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Sample {
    /// The partition that printed it.
    pub partition: String,
    /// What it is a sample of (`claim`, `answer`).
    pub kind: String,
    /// Its fields, by name.
    pub fields: BTreeMap<String, String>,
}

impl Sample {
    /// Integer field `name`, if present and an integer.
    pub fn number(&self, name: &str) -> Option<u64> {
        self.fields.get(name)?.parse().ok()
    }
}

/// Reads `[partition] sample <kind> key=value ...` lines; other lines are skipped.
pub fn parse(lines: &[String]) -> Vec<Sample> {
    let mut found = Vec::new();
    for line in lines {
        let line = line.trim_end_matches('\r');
        let Some((partition, text)) = line
            .strip_prefix('[')
            .and_then(|rest| rest.split_once("] sample "))
        else {
            continue;
        };
        let mut words = text.split_whitespace();
        let Some(kind) = words.next() else { continue };
        let fields = words
            .filter_map(|w| w.split_once('='))
            .map(|(k, v)| (k.to_owned(), v.to_owned()))
            .collect();
        found.push(Sample {
            partition: partition.to_owned(),
            kind: kind.to_owned(),
            fields,
        });
    }
    found
}

/// The phases of a claim, in order; they add up to the claim's total.
pub const PHASES: [(&str, &str); 6] = [
    ("issue", "claim to request issued"),
    ("to_handler", "request to the borrower's handler running"),
    ("choice", "the library OS's choice"),
    (
        "release",
        "release and acknowledgement (the kernel's hand-over included)",
    ),
    ("deadline", "last answer to the deadline (abort only)"),
    (
        "resume",
        "last answer, or the deadline, to claimant resumed",
    ),
];

/// One timed claim, broken into [`PHASES`] (counter ticks).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Claim {
    /// `large` or `small`.
    pub holdings: String,
    /// Frames claimed.
    pub frames: u64,
    /// From the call to the return.
    pub total: u64,
    /// Ticks per phase, in the order of [`PHASES`].
    pub phases: [u64; 6],
    /// Requests answered during it.
    pub requests: usize,
    /// Frames the borrowers held when their policies chose (the most of any answer).
    pub held: u64,
}

/// One answer, as the claim breakdown needs it.
#[derive(Clone, Copy, Debug)]
struct Answer {
    issued: u64,
    deadline: u64,
    entered: u64,
    chosen: u64,
    done: u64,
    held: u64,
    met: bool,
}

fn answer(sample: &Sample) -> Option<Answer> {
    let released = sample.number("released")?;
    let acknowledged = sample.number("acknowledged")?;
    Some(Answer {
        issued: sample.number("issued")?,
        deadline: sample.number("deadline")?,
        entered: sample.number("entered")?,
        chosen: sample.number("chosen")?,
        done: if acknowledged == 0 {
            released
        } else {
            acknowledged
        },
        held: sample.number("held")?,
        met: sample.number("frames")? >= sample.number("owed")?,
    })
}

/// Every `claim` sample of `samples`, broken into phases with the `answer`s issued during
/// it. The answers are walked in the order their handlers ran, with a cursor at the end of
/// the last: the time from the cursor to a handler is `to_handler`, the handler's own time
/// `choice` and `release`. After an answer that left frames owed, the time from the cursor
/// to its deadline is `deadline`, and from the deadline to the next handler (the abort, the
/// claimant's next call) or to the claim's end is `resume`, as is what is left after the
/// last answer.
pub fn claims(samples: &[Sample]) -> Vec<Claim> {
    let answers: Vec<Answer> = samples
        .iter()
        .filter(|s| s.kind == "answer")
        .filter_map(answer)
        .collect();
    samples
        .iter()
        .filter(|s| s.kind == "claim")
        .filter_map(|s| {
            let start = s.number("start")?;
            let end = s.number("end")?;
            let mut during: Vec<Answer> = answers
                .iter()
                .filter(|a| a.issued >= start && a.issued <= end)
                .copied()
                .collect();
            during.sort_by_key(|a| (a.entered, a.issued));
            Some(Claim {
                holdings: s.fields.get("holdings").cloned().unwrap_or_default(),
                frames: s.number("frames")?,
                total: end.saturating_sub(start),
                phases: phases(start, end, &during),
                requests: during.len(),
                held: during.iter().map(|a| a.held).max().unwrap_or(0),
            })
        })
        .collect()
}

/// The [`PHASES`] of a claim from `start` to `end` with `answers` sorted by `entered`.
fn phases(start: u64, end: u64, answers: &[Answer]) -> [u64; 6] {
    let mut phases = [0; 6];
    let Some(first) = answers.iter().map(|a| a.issued).min() else {
        phases[5] = end.saturating_sub(start);
        return phases;
    };
    phases[0] = first.saturating_sub(start);
    let mut cursor = first;
    // The deadline of the last unmet request: the wait for it, and what follows it (the
    // abort, the claimant's next call), are `deadline` and `resume`, not `to_handler`.
    let mut unmet_deadline: Option<u64> = None;
    for a in answers {
        let entered = a.entered.clamp(cursor, end);
        if let Some(deadline) = unmet_deadline.take() {
            let deadline = deadline.clamp(cursor, entered);
            phases[4] += deadline - cursor;
            phases[5] += entered - deadline;
            cursor = entered;
        }
        phases[1] += entered - cursor;
        let chosen = a.chosen.clamp(entered, end);
        phases[2] += chosen - entered;
        let done = a.done.clamp(chosen, end);
        phases[3] += done - chosen;
        cursor = done;
        if !a.met {
            unmet_deadline = Some(a.deadline);
        }
    }
    if let Some(deadline) = unmet_deadline {
        let deadline = deadline.clamp(cursor, end);
        phases[4] += deadline - cursor;
        cursor = deadline;
    }
    phases[5] += end.saturating_sub(cursor);
    phases
}

/// Statistics of one phase (or the total) of a point, in ticks and in instructions.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
pub struct PhaseStats {
    /// Counter ticks.
    pub ticks: Stats,
    /// Instructions of virtual time (ticks times instructions per tick).
    pub instructions: Stats,
}

/// One point of the revocation sweep: every claim of one size with one kind of holdings.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Point {
    /// `large` or `small`.
    pub holdings: String,
    /// Frames claimed.
    pub frames: u64,
    /// Claims measured.
    pub repeats: usize,
    /// Median of the most frames a borrower held when its policy chose.
    pub held: u64,
    /// Median number of requests answered per claim.
    pub requests: usize,
    /// Claim to claimant resumed.
    pub total: PhaseStats,
    /// The total divided by the frames claimed.
    pub per_frame: PhaseStats,
    /// Each of [`PHASES`], in that order.
    pub phases: Vec<NamedPhase>,
}

/// One phase of a point.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct NamedPhase {
    /// Its name in [`PHASES`].
    pub name: String,
    /// Its statistics.
    #[serde(flatten)]
    pub stats: PhaseStats,
}

/// The points of `claims`, sorted by holdings (large first) then frames;
/// `instructions_per_tick` converts ticks.
pub fn points(claims: &[Claim], instructions_per_tick: u64) -> Vec<Point> {
    let mut groups: BTreeMap<(bool, u64), Vec<&Claim>> = BTreeMap::new();
    for c in claims {
        groups
            .entry((c.holdings != "large", c.frames))
            .or_default()
            .push(c);
    }
    let both = |samples: &[u64]| {
        let ticks = Stats::of(samples).unwrap_or_default();
        PhaseStats {
            ticks,
            instructions: ticks.map(|t| t * instructions_per_tick),
        }
    };
    groups
        .into_values()
        .map(|group| {
            let totals: Vec<u64> = group.iter().map(|c| c.total).collect();
            let per_frame: Vec<u64> = group.iter().map(|c| c.total / c.frames.max(1)).collect();
            let median = |values: Vec<u64>| Stats::of(&values).map_or(0, |s| s.median);
            Point {
                holdings: group[0].holdings.clone(),
                frames: group[0].frames,
                repeats: group.len(),
                held: median(group.iter().map(|c| c.held).collect()),
                requests: median(group.iter().map(|c| c.requests as u64).collect()) as usize,
                total: both(&totals),
                per_frame: both(&per_frame),
                phases: PHASES
                    .iter()
                    .enumerate()
                    .map(|(i, (name, _))| {
                        let values: Vec<u64> = group.iter().map(|c| c.phases[i]).collect();
                        NamedPhase {
                            name: (*name).to_owned(),
                            stats: both(&values),
                        }
                    })
                    .collect(),
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lines(text: &str) -> Vec<String> {
        text.lines().map(str::to_owned).collect()
    }

    #[test]
    fn reads_sample_lines_of_partitions_only() {
        let samples = parse(&lines(
            "[driver] sample claim holdings=large frames=16 rep=0 start=100 end=900\r\n\
             exo: sample claim frames=1\n\
             [driver] bench x=1\n\
             [b] sample answer seq=1",
        ));
        assert_eq!(samples.len(), 2);
        assert_eq!(samples[0].partition, "driver");
        assert_eq!(samples[0].kind, "claim");
        assert_eq!(samples[0].number("end"), Some(900));
        assert_eq!(samples[0].fields["holdings"], "large");
        assert_eq!(samples[0].number("holdings"), None);
        assert_eq!(samples[1].number("seq"), Some(1));
    }

    #[test]
    fn a_cooperative_claim_splits_into_phases_that_add_up() {
        let samples = parse(&lines(
            "[driver] sample claim holdings=large frames=16 rep=0 start=100 end=1000\n\
             [b] sample answer seq=1 issued=110 deadline=9000 entered=300 chosen=500 \
             released=800 acknowledged=820 owed=16 frames=16 held=70\n\
             [b] sample answer seq=0 issued=5000 deadline=0 entered=0 chosen=0 \
             released=0 acknowledged=0 owed=1 frames=0 held=0",
        ));
        let claims = claims(&samples);
        assert_eq!(claims.len(), 1);
        let c = &claims[0];
        assert_eq!(c.phases, [10, 190, 200, 320, 0, 180]);
        assert_eq!(c.phases.iter().sum::<u64>(), c.total);
        assert_eq!((c.requests, c.held), (1, 70));
    }

    #[test]
    fn an_aborted_claim_waits_for_the_deadline() {
        let samples = parse(&lines(
            "[driver] sample claim holdings=small frames=4 rep=0 start=0 end=5000\n\
             [b] sample answer seq=3 issued=10 deadline=3000 entered=100 chosen=150 \
             released=160 acknowledged=0 owed=4 frames=0 held=9",
        ));
        let c = &claims(&samples)[0];
        assert_eq!(c.phases, [10, 90, 50, 10, 2840, 2000]);
        assert_eq!(c.phases.iter().sum::<u64>(), c.total);
    }

    #[test]
    fn each_unmet_request_of_a_claim_waits_for_its_own_deadline() {
        let samples = parse(&lines(
            "[driver] sample claim holdings=small frames=8 rep=0 start=0 end=10000\n\
             [b] sample answer seq=1 issued=10 deadline=2000 entered=100 chosen=150 \
             released=160 acknowledged=0 owed=4 frames=0 held=9\n\
             [b] sample answer seq=2 issued=3000 deadline=6000 entered=3100 chosen=3150 \
             released=3160 acknowledged=0 owed=4 frames=0 held=9",
        ));
        let c = &claims(&samples)[0];
        // to_handler: 90 + 0; deadline: 1840 + 2840; resume: 1100 (abort, next call, next
        // request, up to the second handler) + 4000.
        assert_eq!(c.phases, [10, 90, 100, 20, 4680, 5100]);
        assert_eq!(c.phases.iter().sum::<u64>(), c.total);
    }

    #[test]
    fn a_claim_without_requests_is_all_resume() {
        let samples = parse(&lines(
            "[driver] sample claim holdings=large frames=1 rep=0 start=10 end=50",
        ));
        assert_eq!(claims(&samples)[0].phases, [0, 0, 0, 0, 0, 40]);
    }

    #[test]
    fn points_group_by_holdings_then_frames() {
        let claim = |holdings: &str, frames, total| Claim {
            holdings: holdings.into(),
            frames,
            total,
            phases: [0, 0, 0, 0, 0, total],
            requests: 1,
            held: 5,
        };
        let claims = [
            claim("small", 1, 10),
            claim("large", 16, 320),
            claim("large", 1, 30),
            claim("large", 1, 20),
        ];
        let points = points(&claims, 16);
        let keys: Vec<_> = points
            .iter()
            .map(|p| (p.holdings.as_str(), p.frames))
            .collect();
        assert_eq!(keys, [("large", 1), ("large", 16), ("small", 1)]);
        assert_eq!(points[0].total.ticks.median, 20);
        assert_eq!(points[0].total.instructions.max, 480);
        assert_eq!(points[1].per_frame.ticks.min, 20);
        assert_eq!(points[0].phases[5].name, "resume");
    }
}
