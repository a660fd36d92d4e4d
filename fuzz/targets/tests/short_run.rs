//! The short run of every fuzz target, for `scripts/test`: the seeds, every regression input
//! in `fuzz/regressions/<target>/`, then `EXO_FUZZ_ITERATIONS` (default 3000) deterministic
//! mutations of them (bit flips, interesting values, inserted, deleted, repeated and spliced
//! chunks). A failing input is saved to `fuzz/artifacts/short-run/<target>-<n>` and printed,
//! to become a regression input once fixed. The long, coverage-guided run is libFuzzer's
//! (`cargo fuzz run <target>`, see docs/testing.md).

use std::panic::{AssertUnwindSafe, catch_unwind};
use std::path::PathBuf;

use exo_fuzz_targets::{TARGETS, seeds, workspace_root};

/// A xorshift generator: the same mutations on every run.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }

    fn below(&mut self, n: usize) -> usize {
        if n == 0 {
            0
        } else {
            (self.next() % n as u64) as usize
        }
    }
}

/// Applies one to eight random edits to `input`; `other` is spliced from.
fn mutate(rng: &mut Rng, input: &mut Vec<u8>, other: &[u8]) {
    for _ in 0..1 + rng.below(8) {
        let len = input.len();
        match rng.below(8) {
            0 if len > 0 => {
                let at = rng.below(len);
                input[at] ^= 1 << rng.below(8);
            }
            1 if len > 0 => {
                let at = rng.below(len);
                input[at] = [0, 1, 0x7f, 0x80, 0xff, 0xfe, 0x40, 0x20][rng.below(8)];
            }
            2 if len >= 4 => {
                // An interesting 32- or 64-bit value, either endianness.
                let at = rng.below(len - 3);
                let value: u64 =
                    [0, 1, u64::MAX, 1 << 31, 1 << 63, 0x1000, 0xFFF, 0x7FFF_FFFF][rng.below(8)];
                let bytes = if rng.below(2) == 0 {
                    value.to_le_bytes()
                } else {
                    value.to_be_bytes()
                };
                let n = if len - at >= 8 { 8 } else { 4 };
                input[at..at + n].copy_from_slice(&bytes[..n]);
            }
            3 if len > 0 => {
                let at = rng.below(len);
                let n = 1 + rng.below((len - at).min(64));
                input.drain(at..at + n);
            }
            4 if len > 0 => {
                let at = rng.below(len);
                let n = 1 + rng.below((len - at).min(64));
                let chunk = input[at..at + n].to_vec();
                let to = rng.below(len + 1);
                input.splice(to..to, chunk);
            }
            5 if !other.is_empty() => {
                let at = rng.below(other.len());
                let n = 1 + rng.below((other.len() - at).min(256));
                let to = rng.below(len + 1);
                let end = (to + n).min(len);
                input.splice(to..end, other[at..at + n].iter().copied());
            }
            6 => {
                let at = rng.below(len + 1);
                let n = 1 + rng.below(16);
                let bytes: Vec<u8> = (0..n).map(|_| rng.next() as u8).collect();
                input.splice(at..at, bytes);
            }
            _ if len > 1 => input.truncate(rng.below(len)),
            _ => input.push(rng.next() as u8),
        }
    }
}

/// Files in `fuzz/<dir>/<target>/`.
fn files(dir: &str, target: &str) -> Vec<(PathBuf, Vec<u8>)> {
    let dir = workspace_root().join("fuzz").join(dir).join(target);
    let Ok(entries) = std::fs::read_dir(&dir) else {
        return Vec::new();
    };
    let mut files: Vec<_> = entries
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.is_file())
        .map(|p| {
            let bytes = std::fs::read(&p).expect("readable regression input");
            (p, bytes)
        })
        .collect();
    files.sort();
    files
}

/// Runs `input` through `target`; on a panic saves and prints it, and fails.
fn run_one(name: &str, target: fn(&[u8]), input: &[u8], what: &str) {
    if catch_unwind(AssertUnwindSafe(|| target(input))).is_ok() {
        return;
    }
    let dir = workspace_root().join("fuzz/artifacts/short-run");
    std::fs::create_dir_all(&dir).expect("artifact directory");
    let path = (0..)
        .map(|n| dir.join(format!("{name}-{n}")))
        .find(|p| !p.exists())
        .expect("a free name");
    std::fs::write(&path, input).expect("saving the failing input");
    panic!(
        "fuzz target `{name}` failed on {what}, saved to {}\n\
         reproduce: cargo run --manifest-path fuzz/Cargo.toml -p exo-fuzz-targets \
         --bin exo-fuzz-replay -- {name} {}",
        path.display(),
        path.display()
    );
}

fn short_run(name: &str) {
    let target = TARGETS
        .iter()
        .find(|(n, _)| *n == name)
        .map(|(_, f)| *f)
        .expect("known target");
    let mut inputs = seeds::of(name);
    for (path, bytes) in files("regressions", name) {
        run_one(
            name,
            target,
            &bytes,
            &format!("regression input {}", path.display()),
        );
        inputs.push(bytes);
    }
    for (i, seed) in inputs.iter().enumerate() {
        run_one(name, target, seed, &format!("seed {i}"));
    }
    let iterations: usize = std::env::var("EXO_FUZZ_ITERATIONS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(3000);
    let mut rng = Rng(0x2545_F491_4F6C_DD1D ^ name.len() as u64);
    for i in 0..iterations {
        let mut input = inputs[rng.below(inputs.len())].clone();
        let other = &inputs[rng.below(inputs.len())];
        mutate(&mut rng, &mut input, other);
        run_one(name, target, &input, &format!("mutation {i}"));
    }
}

#[test]
fn package() {
    short_run("package");
}

/// The kernel's own device-tree reader; `fuzz/regressions/dtb/memory-node-without-reg` made
/// `fdt` 0.1.5, which it replaced, panic.
#[test]
fn dtb() {
    short_run("dtb");
}

#[test]
fn elf() {
    short_run("elf");
}

#[test]
fn config() {
    short_run("config");
}

#[test]
fn dispatcher() {
    short_run("dispatcher");
}
