//! `docs/abi.md`'s call tables, error table and version line are generated from
//! `exo_abi::call::CALLS`: this test fails when the document differs from what the ABI
//! says, showing the lines that differ. `EXO_BLESS=1 cargo test -p exo-abi --test docs`
//! rewrites them.

use std::path::PathBuf;

use exo_abi::call::markdown;

fn document() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../docs/abi.md")
}

#[test]
fn abi_reference_matches_the_call_descriptions() {
    let path = document();
    let text = std::fs::read_to_string(&path).expect("docs/abi.md is readable");
    let fresh = markdown::update(&text).unwrap_or_else(|e| panic!("{e}"));
    if fresh == text {
        return;
    }
    if std::env::var_os("EXO_BLESS").is_some() {
        std::fs::write(&path, &fresh).expect("docs/abi.md is writable");
        return;
    }
    let old: Vec<&str> = text.lines().collect();
    let new: Vec<&str> = fresh.lines().collect();
    let mut diff = String::new();
    for line in old.iter().filter(|l| !new.contains(l)) {
        diff.push_str(&format!("- {line}\n"));
    }
    for line in new.iter().filter(|l| !old.contains(l)) {
        diff.push_str(&format!("+ {line}\n"));
    }
    panic!(
        "docs/abi.md's generated tables differ from exo_abi::call::CALLS:\n{diff}\n\
         Hint: the document is generated from the ABI crate; change the description in \
         abi/src/call/table.rs (or the prose outside the markers), then run \
         `EXO_BLESS=1 cargo test -p exo-abi --test docs` to rewrite the tables."
    );
}
