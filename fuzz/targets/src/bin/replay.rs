//! Runs one input file through one target, with the panic message and backtrace a plain
//! process gives: `exo-fuzz-replay <target> <file>...`.

fn main() {
    let mut args = std::env::args().skip(1);
    let (Some(name), files) = (args.next(), args.collect::<Vec<_>>()) else {
        eprintln!("usage: exo-fuzz-replay <target> <file>...");
        std::process::exit(2);
    };
    let Some((_, target)) = exo_fuzz_targets::TARGETS.iter().find(|(n, _)| *n == name) else {
        eprintln!("unknown target `{name}`");
        std::process::exit(2);
    };
    for file in files {
        let bytes = std::fs::read(&file).unwrap_or_else(|e| panic!("reading {file}: {e}"));
        target(&bytes);
        println!("{file}: ok");
    }
}
