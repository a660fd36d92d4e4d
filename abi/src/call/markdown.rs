//! `docs/abi.md`'s generated parts, rendered from [`CALLS`]: one table per [`Group`] of
//! calls, the error table with the calls that return each error, and the version line.
//!
//! Each part sits in the document between `<!-- generated: NAME -->` and
//! `<!-- end generated: NAME -->`; [`update`] replaces them, so a test can compare the
//! document with [`update`]'s result and a bless run can write it.

use alloc::format;
use alloc::string::String;
use alloc::vec::Vec;

use super::{CALLS, Description, Group, Registers, Results};
use crate::{ABI_VERSION, Error};

/// Every generated part: its name and its text (ending with a newline).
pub fn parts() -> Vec<(&'static str, String)> {
    let mut parts = Vec::new();
    parts.push(("version", version()));
    for group in Group::ALL {
        parts.push((group.marker(), call_table(group)));
    }
    parts.push(("errors", error_table()));
    parts
}

/// The line that states the ABI version.
pub fn version() -> String {
    format!(
        "The version is `exo_abi::ABI_VERSION` = `{}` ({}.{}; major in bits 31:16, minor in \
         15:0).\n",
        hex(ABI_VERSION),
        ABI_VERSION >> 16,
        ABI_VERSION & 0xFFFF
    )
}

/// The table of one group's calls.
pub fn call_table(group: Group) -> String {
    let mut out = String::from(
        "| Call | ID | Arguments | Results | Errors, in the order checked |\n\
         |---|---|---|---|---|\n",
    );
    for d in CALLS.iter().filter(|d| d.group == group) {
        out.push_str(&format!(
            "| `{}` | `{}` | {} | {} | {} |\n",
            d.name,
            hex(d.id()),
            cell(&arguments(d)),
            cell(&results(d)),
            cell(&errors(d)),
        ));
    }
    if group == Group::Base {
        out.push_str(
            "| any other ID | | | | `NotSupported`: this includes `PSCI_SYSTEM_RESET`, the \
             other PSCI calls and unused `0xC600_xxxx` numbers |\n",
        );
    }
    out
}

/// The table of errors: code, name, meaning and the calls that return it.
pub fn error_table() -> String {
    let mut out = String::from("| Value | Name | Meaning | Returned by |\n|---:|---|---|---|\n");
    for error in Error::ALL {
        let mut by: Vec<&str> = Vec::new();
        if error == Error::NotSupported {
            by.push("unknown IDs");
        }
        let calls: Vec<String> = CALLS
            .iter()
            .filter(|d| d.call.may_return(error))
            .map(|d| format!("`{}`", d.name.trim_start_matches("EXO_")))
            .collect();
        let mut returned_by = by.join(", ");
        for call in &calls {
            if !returned_by.is_empty() {
                returned_by.push_str(", ");
            }
            returned_by.push_str(call);
        }
        if returned_by.is_empty() {
            returned_by.push_str("none");
        }
        out.push_str(&format!(
            "| {} | `{:?}` | {} | {} |\n",
            error.code(),
            error,
            cell(error.meaning()),
            cell(&returned_by),
        ));
    }
    out
}

/// Replaces every generated part of `document` with its fresh text. Fails if a part's
/// markers are missing or out of order.
pub fn update(document: &str) -> Result<String, String> {
    let mut out = String::from(document);
    for (name, text) in parts() {
        let begin = format!("<!-- generated: {name} -->\n");
        let end = format!("<!-- end generated: {name} -->");
        let start = out
            .find(&begin)
            .ok_or_else(|| format!("docs/abi.md has no `{}` marker", begin.trim_end()))?
            + begin.len();
        let stop = out[start..]
            .find(&end)
            .ok_or_else(|| format!("docs/abi.md has no `{end}` marker after its begin marker"))?
            + start;
        out.replace_range(start..stop, &text);
    }
    Ok(out)
}

/// `0xC600_0013`.
fn hex(id: u32) -> String {
    format!("0x{:04X}_{:04X}", id >> 16, id & 0xFFFF)
}

/// `x1` or `x2`..`x8`.
fn registers(r: Registers) -> String {
    if r.first == r.last {
        format!("`x{}`", r.first)
    } else {
        format!("`x{}`..`x{}`", r.first, r.last)
    }
}

fn arguments(d: &Description) -> String {
    if d.args.is_empty() {
        return String::from("none");
    }
    let parts: Vec<String> = d
        .args
        .iter()
        .map(|a| format!("{} = {}: {}", registers(a.registers), a.name, a.meaning))
        .collect();
    parts.join("; ")
}

fn results(d: &Description) -> String {
    match d.results {
        Results::NoReturn => String::from("does not return"),
        Results::NoReturnOnSuccess => String::from("does not return on success"),
        Results::Values(values) => {
            let parts: Vec<String> = values
                .iter()
                .map(|v| format!("{} = {}", registers(v.registers), v.meaning))
                .collect();
            parts.join(", ")
        }
    }
}

fn errors(d: &Description) -> String {
    if d.errors.is_empty() {
        return String::from("none");
    }
    let parts: Vec<String> = d
        .errors
        .iter()
        .map(|e| {
            if e.when.is_empty() {
                format!("`{:?}`", e.error)
            } else {
                format!("`{:?}` ({})", e.error, e.when)
            }
        })
        .collect();
    parts.join("; ")
}

/// Escapes `|` for a Markdown table cell (also inside code spans, as GitHub requires).
fn cell(text: &str) -> String {
    text.replace('|', "\\|")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tables_name_every_call_once() {
        let all: String = Group::ALL.iter().map(|&g| call_table(g)).collect();
        for d in CALLS {
            assert_eq!(
                all.matches(&format!("| `{}` |", d.name)).count(),
                1,
                "{}",
                d.name
            );
        }
        assert!(call_table(Group::Memory).contains("| `EXO_BIND` | `0xC600_0013` |"));
    }

    #[test]
    fn error_table_lists_the_calls_that_declare_each_error() {
        let table = error_table();
        let row = |name: &str| {
            table
                .lines()
                .find(|l| l.contains(&format!("| `{name}` |")))
                .unwrap()
                .to_string()
        };
        assert!(row("Denied").contains("`UNBIND`"));
        assert!(row("NotOwner").contains("`IRQ_ENABLE`"));
        assert!(row("NotSupported").contains("unknown IDs"));
        assert!(!row("Overlap").contains("`UNBIND`"));
    }

    #[test]
    fn update_replaces_only_between_markers() {
        let mut doc = String::from("intro\n");
        for (name, _) in parts() {
            doc.push_str(&format!(
                "<!-- generated: {name} -->\nstale\n<!-- end generated: {name} -->\nprose\n"
            ));
        }
        let updated = update(&doc).unwrap();
        assert!(!updated.contains("stale"));
        assert!(updated.starts_with("intro\n"));
        assert_eq!(updated.matches("prose\n").count(), parts().len());
        assert_eq!(update(&updated).unwrap(), updated, "idempotent");
        assert!(update("no markers").is_err());
    }
}
