//! `exo profile`: where the kernel spends its instructions, per function.
//!
//! QEMU runs the system under `-icount` with one guest instruction per translation block
//! and logs every block it executes inside the kernel's code (`-d exec,nochain -dfilter`),
//! so the log holds one line per kernel instruction executed. The profile counts them by
//! address and attributes each to the kernel symbol it falls in (the nearest one below it,
//! which also catches assembly labels without a size). Deterministic like `exo bench`, and
//! slow: expect QEMU to run ten to fifty times slower and the log to take hundreds of MB
//! for a short run (it is deleted afterwards).

use std::collections::HashMap;
use std::fmt;
use std::fs::File;
use std::io::{BufRead, BufReader};
use std::path::Path;

use anyhow::Context;

use crate::elf::Elf;
use crate::{RunOptions, RunOutcome};

/// Instructions executed in one kernel function.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Entry {
    /// The function (demangled).
    pub function: String,
    /// Instructions executed in it.
    pub instructions: u64,
}

/// A profile of one run.
#[derive(Debug)]
pub struct Profile {
    /// Functions, most instructions first.
    pub entries: Vec<Entry>,
    /// Every kernel instruction executed.
    pub total: u64,
    /// The run itself.
    pub outcome: RunOutcome,
}

/// QEMU arguments that log every kernel instruction in `[start, end)` to `log`, in the
/// deterministic virtual time `exo bench` uses.
pub fn qemu_args(start: u64, end: u64, log: &Path) -> Vec<String> {
    let range = format!("{start:#x}..{end:#x}");
    let log = log.display().to_string();
    let trace = ["-accel", "tcg,one-insn-per-tb=on", "-d", "exec,nochain"];
    let filter = ["-dfilter", range.as_str(), "-D", log.as_str()];
    crate::bench::QEMU_ARGS
        .iter()
        .chain(&trace)
        .chain(&filter)
        .map(|a| a.to_string())
        .collect()
}

/// The guest PC of a QEMU `-d exec` line: `Trace 0: 0x7f.. [00000000/<pc>/<flags>/...]`.
fn pc_of(line: &str) -> Option<u64> {
    let fields = line.split_once('[')?.1;
    let pc = fields.split('/').nth(1)?;
    u64::from_str_radix(pc, 16).ok()
}

/// Counts the instructions of `log` per function of `kernel`.
pub fn attribute(log: impl BufRead, kernel: &Elf) -> anyhow::Result<(Vec<Entry>, u64)> {
    let mut per_pc: HashMap<u64, u64> = HashMap::new();
    for line in log.lines() {
        if let Some(pc) = pc_of(&line?) {
            *per_pc.entry(pc).or_default() += 1;
        }
    }
    let symbols = &kernel.functions;
    let mut per_function: HashMap<&str, u64> = HashMap::new();
    let mut total = 0;
    for (pc, count) in per_pc {
        total += count;
        let index = symbols.partition_point(|(address, _, _)| *address <= pc);
        let name = index
            .checked_sub(1)
            .map_or("(before the first symbol)", |i| symbols[i].2.as_str());
        *per_function.entry(name).or_default() += count;
    }
    let mut entries: Vec<Entry> = per_function
        .into_iter()
        .map(|(name, instructions)| Entry {
            function: format!("{:#}", rustc_demangle::demangle(name)),
            instructions,
        })
        .collect();
    entries.sort_by(|a, b| {
        b.instructions
            .cmp(&a.instructions)
            .then(a.function.cmp(&b.function))
    });
    Ok((entries, total))
}

/// Boots `config` with every kernel instruction logged and returns the profile. The kernel
/// ELF is the one `exo build` leaves in the image's directory.
pub fn run(config: &Path, options: &RunOptions) -> anyhow::Result<Profile> {
    let workspace = crate::Workspace::locate_for(Some(config))?;
    let (system, image) = crate::build(&workspace, config, options.board.as_deref())?;
    let kernel_path = image.with_file_name("exo-kernel.elf");
    let kernel = Elf::read(&kernel_path)?;
    let start = kernel.symbol("__image_start")?;
    let end = kernel.symbol("__text_end")?;
    let log = image.with_extension("exec.log");
    let mut options = options.clone();
    options.extra_qemu_args.extend(qemu_args(start, end, &log));
    let outcome = crate::qemu::run(&system, &image, &options)?;
    let file = File::open(&log).with_context(|| format!("QEMU wrote no log {}", log.display()))?;
    let attributed = attribute(BufReader::new(file), &kernel);
    let _ = std::fs::remove_file(&log);
    let (entries, total) = attributed?;
    Ok(Profile {
        entries,
        total,
        outcome,
    })
}

impl Profile {
    /// Writes the `top` functions.
    pub fn display(&self, top: usize) -> impl fmt::Display + '_ {
        struct Top<'a>(&'a Profile, usize);
        impl fmt::Display for Top<'_> {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                let Top(profile, top) = *self;
                writeln!(
                    f,
                    "{} kernel instructions executed (QEMU -icount: 1 instruction = 1 ns)",
                    profile.total
                )?;
                writeln!(f, "{:>12} {:>6}  function", "instructions", "share")?;
                for entry in profile.entries.iter().take(top) {
                    let share = 100.0 * entry.instructions as f64 / profile.total.max(1) as f64;
                    writeln!(
                        f,
                        "{:>12} {:>5.1}%  {}",
                        entry.instructions, share, entry.function
                    )?;
                }
                Ok(())
            }
        }
        Top(self, top)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_the_pc_of_qemu_exec_lines() {
        assert_eq!(
            pc_of("Trace 0: 0x7f2d58000a40 [00000000/0000000040080040/00000461/ff020201] "),
            Some(0x4008_0040)
        );
        assert_eq!(pc_of("garbage"), None);
    }

    #[test]
    fn attributes_instructions_to_the_symbol_below_them() {
        let kernel = Elf {
            entry: 0,
            segments: Vec::new(),
            symbols: HashMap::new(),
            functions: vec![
                (0x1000, 0, "vectors".into()),
                (0x1100, 0x40, "_ZN3foo3bar17h0123456789abcdefE".into()),
            ],
        };
        let log = "\
Trace 0: 0x1 [00000000/0000000000001000/0/0]
Trace 0: 0x1 [00000000/0000000000001004/0/0]
Trace 0: 0x1 [00000000/0000000000001100/0/0]
Trace 0: 0x1 [00000000/0000000000001104/0/0]
Trace 0: 0x1 [00000000/0000000000001104/0/0]
";
        let (entries, total) = attribute(log.as_bytes(), &kernel).unwrap();
        assert_eq!(total, 5);
        assert_eq!(
            entries,
            vec![
                Entry {
                    function: "foo::bar".into(),
                    instructions: 3
                },
                Entry {
                    function: "vectors".into(),
                    instructions: 2
                },
            ]
        );
    }
}
