//! Writes every target's seeds into `fuzz/corpus/<target>/` (creating it), for libFuzzer:
//! `cargo run --manifest-path fuzz/Cargo.toml -p exo-fuzz-targets --bin exo-fuzz-seeds`.

use std::fs;

fn main() -> std::io::Result<()> {
    let corpus = exo_fuzz_targets::workspace_root().join("fuzz/corpus");
    for (name, _) in exo_fuzz_targets::TARGETS {
        let dir = corpus.join(name);
        fs::create_dir_all(&dir)?;
        for (i, seed) in exo_fuzz_targets::seeds::of(name).iter().enumerate() {
            fs::write(dir.join(format!("seed-{i}")), seed)?;
        }
        println!("{}", dir.display());
    }
    Ok(())
}
