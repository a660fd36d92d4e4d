//! The library OS's layering, checked on its sources so it cannot drift.
//!
//! The machine layer (`src/arch`) is the ground floor: it names nothing of the crate but
//! itself and the runtime's hooks (`crate::runtime::hooks`), through which policies register
//! what the vectors and the upcall stub run. The runtime (`src/runtime`) names the machine and
//! the thin kernel interface below it, never a policy module. And `unsafe` code stays in the
//! machine layer but for the few places listed in [`UNSAFE_OUTSIDE_ARCH`].
//!
//! The check reads each file's code (comments stripped), finds every path that starts with
//! `crate::` or `super::` (use trees included) and resolves it to a path from the crate root.

use std::fs;
use std::path::{Path, PathBuf};

/// What the machine layer may name: itself and the runtime's hooks.
const ARCH_MAY_NAME: &[&[&str]] = &[&["arch"], &["runtime", "hooks"]];

/// What the runtime may name: itself, the machine, the kernel interface it starts and exits
/// with (`hypercall`, `console`, `info`) and the crate root's own items.
const RUNTIME_MAY_NAME: &[&[&str]] = &[
    &["runtime"],
    &["arch"],
    &["hypercall"],
    &["console"],
    &["info"],
    &["Info"],
    &["ExitCode"],
    &["EXIT_STATUS_EXCEPTION"],
    &["EXIT_STATUS_NO_INFO"],
    &["println"],
];

/// Files outside `src/arch` that may hold `unsafe` code, and why: each makes a promise only
/// that module can keep.
const UNSAFE_OUTSIDE_ARCH: &[(&str, &str)] = &[
    (
        "lib.rs",
        "`entry!` exports the program's entry stub by name",
    ),
    (
        "mem/heap.rs",
        "the heap's `GlobalAlloc`: its blocks are disjoint",
    ),
    (
        "device/mod.rs",
        "a claimed region's register block: one per region",
    ),
];

fn source_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("src")
}

/// Every `.rs` file under `dir` (none if there is no such directory), sorted.
fn rust_files(dir: &Path) -> Vec<PathBuf> {
    let mut files = Vec::new();
    let mut pending: Vec<PathBuf> = dir
        .is_dir()
        .then(|| dir.to_path_buf())
        .into_iter()
        .collect();
    while let Some(dir) = pending.pop() {
        for entry in fs::read_dir(&dir).expect("the source directory is readable") {
            let path = entry.expect("a directory entry").path();
            if path.is_dir() {
                pending.push(path);
            } else if path.extension().is_some_and(|ext| ext == "rs") {
                files.push(path);
            }
        }
    }
    files.sort();
    files
}

/// The module path of a file relative to `src`: `arch/aarch64/entry.rs` is
/// `[arch, aarch64, entry]`, `arch/mod.rs` is `[arch]`, `lib.rs` is `[]`.
fn module_path(relative: &Path) -> Vec<String> {
    let mut path: Vec<String> = relative
        .iter()
        .map(|part| part.to_string_lossy().into_owned())
        .collect();
    let file = path.pop().expect("a file name");
    if file != "mod.rs" && file != "lib.rs" {
        path.push(file.trim_end_matches(".rs").to_owned());
    }
    path
}

/// `source` without `//` comments (doc comments included). String literals are not
/// special-cased: the sources checked have no `//` in a string.
fn strip_comments(source: &str) -> String {
    source
        .lines()
        .map(|line| line.find("//").map_or(line, |at| &line[..at]))
        .collect::<Vec<_>>()
        .join("\n")
}

fn is_identifier_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || c == '_'
}

/// The paths a use tree starting at `text` names, as segment lists (`a::{b, c::d}` is
/// `[a, b]`, `[a, c, d]`); the second value is how many bytes were read.
fn use_tree(text: &str) -> (Vec<Vec<String>>, usize) {
    let text_trimmed = text.trim_start();
    let skipped = text.len() - text_trimmed.len();
    if let Some(inner) = text_trimmed.strip_prefix('{') {
        let mut paths = Vec::new();
        let mut at = 0;
        loop {
            let rest = &inner[at..];
            let trimmed = rest.trim_start();
            at += rest.len() - trimmed.len();
            if trimmed.starts_with('}') || trimmed.is_empty() {
                return (paths, skipped + 1 + at + 1);
            }
            let (tree, read) = use_tree(&inner[at..]);
            paths.extend(tree);
            at += read;
            let rest = &inner[at..];
            let trimmed = rest.trim_start();
            at += rest.len() - trimmed.len();
            if trimmed.starts_with(',') {
                at += 1;
            }
        }
    }
    let length = text_trimmed
        .find(|c: char| !is_identifier_char(c))
        .unwrap_or(text_trimmed.len());
    let name = &text_trimmed[..length];
    if name.is_empty() {
        return (Vec::new(), skipped.max(1));
    }
    let after = &text_trimmed[length..];
    if let Some(rest) = after.strip_prefix("::") {
        let (tails, read) = use_tree(rest);
        let paths = if tails.is_empty() {
            vec![vec![name.to_owned()]]
        } else {
            tails
                .into_iter()
                .map(|mut tail| {
                    tail.insert(0, name.to_owned());
                    tail
                })
                .collect()
        };
        (paths, skipped + length + 2 + read)
    } else {
        (vec![vec![name.to_owned()]], skipped + length)
    }
}

/// Every path from the crate root that `code` (of the module at `module`) names through
/// `crate::` or `super::`; `Err` for a `super::` chain that climbs past the crate root.
fn crate_paths(code: &str, module: &[String]) -> Result<Vec<Vec<String>>, String> {
    let mut found = Vec::new();
    let mut at = 0;
    while at < code.len() {
        let rest = &code[at..];
        let Some(offset) = rest.find(['c', 's']) else {
            break;
        };
        let start = at + offset;
        let before = code[..start].chars().next_back();
        at = start + 1;
        if before.is_some_and(|c| is_identifier_char(c) || c == '$') {
            continue;
        }
        let text = &code[start..];
        let (base, after) = if let Some(after) = text.strip_prefix("crate::") {
            (Vec::new(), after)
        } else if text.starts_with("super::") {
            let mut climbs = 0;
            let mut after = text;
            while let Some(rest) = after.strip_prefix("super::") {
                climbs += 1;
                after = rest;
            }
            let Some(depth) = module.len().checked_sub(climbs) else {
                return Err(format!(
                    "`{}` climbs past the crate root",
                    &text[..40.min(text.len())]
                ));
            };
            (module[..depth].to_vec(), after)
        } else {
            continue;
        };
        let (tails, read) = use_tree(after);
        for tail in tails {
            let mut path = base.clone();
            path.extend(tail);
            found.push(path);
        }
        at = code.len() - after.len() + read;
    }
    Ok(found)
}

/// Whether `path` starts with one of `allowed`.
fn allowed(path: &[String], allowed: &[&[&str]]) -> bool {
    allowed
        .iter()
        .any(|prefix| prefix.len() <= path.len() && prefix.iter().zip(path).all(|(a, b)| a == b))
}

/// What the files of `layer` (`src/<layer>/` or `src/<layer>.rs`) name outside `may_name`,
/// one line per offence.
fn layer_violations(layer: &str, may_name: &[&[&str]]) -> Vec<String> {
    let root = source_root();
    let mut violations = Vec::new();
    let mut files = rust_files(&root.join(layer));
    let single_file = root.join(format!("{layer}.rs"));
    if single_file.is_file() {
        files.push(single_file);
    }
    for file in files {
        let relative = file.strip_prefix(&root).expect("under src");
        let code = strip_comments(&fs::read_to_string(&file).expect("a readable source file"));
        match crate_paths(&code, &module_path(relative)) {
            Ok(paths) => {
                for path in paths {
                    if !allowed(&path, may_name) {
                        violations.push(format!(
                            "{} names crate::{}",
                            relative.display(),
                            path.join("::")
                        ));
                    }
                }
            }
            Err(error) => violations.push(format!("{}: {error}", relative.display())),
        }
    }
    violations.sort();
    violations.dedup();
    violations
}

#[test]
fn the_machine_layer_names_nothing_above_it_but_the_runtime_hooks() {
    let violations = layer_violations("arch", ARCH_MAY_NAME);
    assert!(
        violations.is_empty(),
        "the arch layer reaches up past the runtime's hooks (register a handler with \
         `runtime::hooks` instead):\n  {}",
        violations.join("\n  ")
    );
}

#[test]
fn the_runtime_names_no_policy_module() {
    let violations = layer_violations("runtime", RUNTIME_MAY_NAME);
    assert!(
        violations.is_empty(),
        "the runtime reaches up into a policy module (let the policy register with it \
         instead):\n  {}",
        violations.join("\n  ")
    );
}

#[test]
fn unsafe_code_stays_in_the_machine_layer() {
    let root = source_root();
    let mut offenders = Vec::new();
    for file in rust_files(&root) {
        let relative = file.strip_prefix(&root).expect("under src");
        let name = relative.to_string_lossy().replace('\\', "/");
        if name.starts_with("arch/") || UNSAFE_OUTSIDE_ARCH.iter().any(|(f, _)| *f == name) {
            continue;
        }
        let code = strip_comments(&fs::read_to_string(&file).expect("a readable source file"));
        let mut words = code.split(|c: char| !is_identifier_char(c));
        if words.any(|word| word == "unsafe") {
            offenders.push(name);
        }
    }
    assert!(
        offenders.is_empty(),
        "`unsafe` outside the arch layer (and the places listed in UNSAFE_OUTSIDE_ARCH): {offenders:?}"
    );
}

#[test]
fn the_checker_resolves_use_trees_and_super() {
    let module: Vec<String> = ["arch", "aarch64", "vectors"].map(String::from).to_vec();
    let code = "use crate::{Info, runtime::{hooks, start}};\nfn f() { super::super::host::x(); \
                crate::irq::dispatch(); $crate::console::print(); }";
    let paths = crate_paths(code, &module).expect("no climb past the root");
    let names: Vec<String> = paths.iter().map(|path| path.join("::")).collect();
    assert_eq!(
        names,
        [
            "Info",
            "runtime::hooks",
            "runtime::start",
            "arch::host::x",
            "irq::dispatch"
        ]
    );
    let flagged: Vec<&String> = names
        .iter()
        .zip(&paths)
        .filter(|(_, path)| !allowed(path, ARCH_MAY_NAME))
        .map(|(name, _)| name)
        .collect();
    assert_eq!(flagged, ["Info", "runtime::start", "irq::dispatch"]);
    assert!(crate_paths("super::super::super::super::x", &module).is_err());
}
