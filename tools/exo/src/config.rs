//! System configurations: which board, which partitions, which program and how much memory
//! each gets. Checked here, on the host, before anything is built or booted.
//!
//! ```toml
//! [system]
//! board = "qemu-virt"   # optional; a directory under platform/
//!
//! [[partition]]
//! name = "hello"        # 1..=32 bytes of [A-Za-z0-9_-], unique
//! program = "hello"     # guests/src/bin/<program>.rs, or a path to an ELF file
//! memory = "2MiB"       # bytes, or <n>KiB/MiB/GiB; a non-zero multiple of 4 KiB
//! ```
//!
//! A program containing `/` or ending in `.elf` is a path relative to the configuration
//! file's directory. Every refusal is one [`ConfigError`] naming the file and the line.

use std::collections::HashMap;
use std::fmt;
use std::path::{Path, PathBuf};

use exo_abi::package::MAX_PARTITIONS;
use exo_abi::{Name, PAGE_SIZE};
use serde::Deserialize;
use serde::de::{self, Deserializer, Visitor};
use serde_spanned::Spanned;

use crate::board::{Board, BoardError, KERNEL_RESERVATION};
use crate::size::Bytes;
use crate::workspace::Workspace;

/// The board a configuration without `[system] board` runs on.
pub const DEFAULT_BOARD: &str = "qemu-virt";

/// A refused configuration (or board file): where, and why.
///
/// Displays as `<path>:<line>: <message>`; the `exo` binary prefixes `error: `.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ConfigError {
    /// The file at fault, as it was named.
    pub path: PathBuf,
    /// The 1-based line at fault, when there is one.
    pub line: Option<usize>,
    /// What is wrong.
    pub message: String,
}

impl ConfigError {
    /// Builds an error.
    pub fn new(path: &Path, line: Option<usize>, message: impl Into<String>) -> Self {
        Self {
            path: path.to_path_buf(),
            line,
            message: message.into(),
        }
    }

    /// Converts a TOML syntax or schema error, mapping its byte span to a line.
    pub fn from_toml(path: &Path, text: &str, error: &toml::de::Error) -> Self {
        let line = error.span().map(|span| line_of(text, span.start));
        Self::new(path, line, error.message().trim_end().replace('\n', "; "))
    }
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.line {
            Some(line) => write!(f, "{}:{line}: {}", self.path.display(), self.message),
            None => write!(f, "{}: {}", self.path.display(), self.message),
        }
    }
}

impl std::error::Error for ConfigError {}

/// The 1-based line holding byte `offset` of `text`.
pub fn line_of(text: &str, offset: usize) -> usize {
    let offset = offset.min(text.len());
    text.as_bytes()[..offset]
        .iter()
        .filter(|&&b| b == b'\n')
        .count()
        + 1
}

/// A checked system configuration.
#[derive(Clone, Debug)]
pub struct System {
    /// The configuration file, as it was named.
    pub path: PathBuf,
    /// The board it runs on.
    pub board: Board,
    /// The partitions, in configuration order (which is partition-id order).
    pub partitions: Vec<Partition>,
}

/// One checked partition.
#[derive(Clone, Debug)]
pub struct Partition {
    /// Its name (valid for [`Name`]).
    pub name: String,
    /// The program it runs.
    pub program: Program,
    /// Its memory quota in bytes: non-zero, a multiple of [`PAGE_SIZE`].
    pub memory_bytes: u64,
    /// Line of its `[[partition]]` header.
    pub line: usize,
    /// Line of its `memory` key.
    pub memory_line: usize,
}

/// Where a partition's program comes from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Program {
    /// A binary of the `exo-guests` package, cross-built by `exo build`.
    Guest(String),
    /// A prebuilt ELF file (absolute, or relative to the current directory).
    Elf(PathBuf),
}

impl Program {
    /// How the configuration names the program, for messages.
    pub fn display_name(&self) -> String {
        match self {
            Program::Guest(name) => name.clone(),
            Program::Elf(path) => path.display().to_string(),
        }
    }
}

impl System {
    /// The configuration's file stem, which names its image.
    pub fn stem(&self) -> String {
        self.path
            .file_stem()
            .map_or_else(|| "system".to_owned(), |s| s.to_string_lossy().into_owned())
    }

    /// An error about this configuration at `line`.
    pub fn error_at(&self, line: usize, message: impl Into<String>) -> ConfigError {
        ConfigError::new(&self.path, Some(line), message)
    }

    /// The guest programs (bin names) the partitions need, deduplicated.
    pub fn guest_programs(&self) -> Vec<&str> {
        let mut names: Vec<&str> = self
            .partitions
            .iter()
            .filter_map(|p| match &p.program {
                Program::Guest(name) => Some(name.as_str()),
                Program::Elf(_) => None,
            })
            .collect();
        names.sort_unstable();
        names.dedup();
        names
    }
}

/// A memory size as written: an integer or a string such as `"2MiB"`.
#[derive(Clone, Debug)]
pub enum SizeValue {
    /// An integer byte count (possibly negative, refused when converted).
    Integer(i64),
    /// A string for [`crate::size::parse`].
    Text(String),
}

impl SizeValue {
    /// The size in bytes, or a message saying why it is not one.
    pub fn bytes(&self) -> Result<u64, String> {
        match self {
            SizeValue::Integer(n) => {
                u64::try_from(*n).map_err(|_| format!("memory size {n} is negative"))
            }
            SizeValue::Text(text) => crate::size::parse(text),
        }
    }
}

impl<'de> Deserialize<'de> for SizeValue {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct SizeVisitor;
        impl Visitor<'_> for SizeVisitor {
            type Value = SizeValue;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a byte count or a string such as \"2MiB\"")
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<SizeValue, E> {
                Ok(SizeValue::Integer(v))
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<SizeValue, E> {
                i64::try_from(v)
                    .map(SizeValue::Integer)
                    .map_err(|_| E::custom("memory size is too large"))
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<SizeValue, E> {
                Ok(SizeValue::Text(v.to_owned()))
            }
        }
        deserializer.deserialize_any(SizeVisitor)
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawConfig {
    #[serde(default)]
    system: Option<RawSystem>,
    #[serde(default)]
    partition: Vec<Spanned<RawPartition>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawSystem {
    board: Option<Spanned<String>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawPartition {
    name: Spanned<String>,
    program: Spanned<String>,
    memory: Spanned<SizeValue>,
}

/// Reads and checks a configuration file. `board_override` replaces `[system] board`.
pub fn load(
    workspace: &Workspace,
    path: &Path,
    board_override: Option<&str>,
) -> Result<System, ConfigError> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| ConfigError::new(path, None, format!("cannot read the configuration: {e}")))?;
    parse(workspace, path, &text, board_override)
}

/// Checks configuration `text`, read from `path` (relative programs resolve against its
/// directory).
pub fn parse(
    workspace: &Workspace,
    path: &Path,
    text: &str,
    board_override: Option<&str>,
) -> Result<System, ConfigError> {
    let error = |offset: usize, message: String| {
        ConfigError::new(path, Some(line_of(text, offset)), message)
    };
    let raw: RawConfig =
        toml::from_str(text).map_err(|e| ConfigError::from_toml(path, text, &e))?;

    let board_key = raw.system.and_then(|s| s.board);
    let (board_name, board_line) = match (board_override, &board_key) {
        (Some(name), _) => (name.to_owned(), None),
        (None, Some(key)) => (key.get_ref().clone(), Some(line_of(text, key.span().start))),
        (None, None) => (DEFAULT_BOARD.to_owned(), None),
    };
    let board = match Board::load(workspace, &board_name) {
        Ok(board) => board,
        Err(BoardError::Invalid(e)) => return Err(e),
        Err(BoardError::Unknown) => {
            let source = if board_override.is_some() {
                " (given with --board)"
            } else {
                ""
            };
            return Err(ConfigError::new(
                path,
                board_line.or(Some(1)).filter(|_| board_override.is_none()),
                format!(
                    "unknown board `{board_name}`{source}: available boards are {} \
                     (directories under platform/ with a board.toml)",
                    list(&workspace.boards())
                ),
            ));
        }
    };

    if raw.partition.is_empty() {
        return Err(ConfigError::new(
            path,
            Some(1),
            "no partitions: add at least one [[partition]] table",
        ));
    }
    if let Some(extra) = raw.partition.get(MAX_PARTITIONS) {
        return Err(error(
            extra.span().start,
            format!(
                "too many partitions: {} given, at most {MAX_PARTITIONS} are supported",
                raw.partition.len()
            ),
        ));
    }

    let config_dir = path.parent().unwrap_or(Path::new(""));
    let mut first_line: HashMap<String, usize> = HashMap::new();
    let mut partitions = Vec::new();
    let mut total = 0u64;
    for spanned in &raw.partition {
        let line = line_of(text, spanned.span().start);
        let raw = spanned.get_ref();

        let name = raw.name.get_ref();
        let valid = !name.is_empty()
            && name.len() <= Name::LEN
            && name
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
        if !valid {
            return Err(error(
                raw.name.span().start,
                format!(
                    "bad partition name `{name}`: use 1 to {} characters from A-Z, a-z, 0-9, \
                     `-` and `_`",
                    Name::LEN
                ),
            ));
        }
        let name_line = line_of(text, raw.name.span().start);
        if let Some(first) = first_line.insert(name.clone(), name_line) {
            return Err(error(
                raw.name.span().start,
                format!("duplicate partition name `{name}` (first used on line {first})"),
            ));
        }

        let program_text = raw.program.get_ref();
        let program = if program_text.contains('/') || program_text.ends_with(".elf") {
            let file = config_dir.join(program_text);
            if !file.is_file() {
                return Err(error(
                    raw.program.span().start,
                    format!(
                        "program ELF file `{program_text}` not found (looked for {})",
                        file.display()
                    ),
                ));
            }
            Program::Elf(file)
        } else {
            let available = workspace.guest_programs();
            if !available.iter().any(|p| p == program_text) {
                return Err(error(
                    raw.program.span().start,
                    format!(
                        "no guest program `{program_text}`: available programs are {} \
                         (guests/src/bin/*.rs), or give a path to an ELF file",
                        list(&available)
                    ),
                ));
            }
            Program::Guest(program_text.clone())
        };

        let memory_at = raw.memory.span().start;
        let memory_bytes = raw
            .memory
            .get_ref()
            .bytes()
            .map_err(|m| error(memory_at, m))?;
        if memory_bytes == 0 {
            return Err(error(memory_at, "memory quota must not be zero".to_owned()));
        }
        if !memory_bytes.is_multiple_of(PAGE_SIZE) {
            return Err(error(
                memory_at,
                format!("memory quota of {memory_bytes} bytes is not a multiple of 4 KiB"),
            ));
        }
        if memory_bytes > board.ram_bytes {
            return Err(error(
                memory_at,
                format!(
                    "memory quota of {} for `{name}` is larger than the {} of RAM board `{}` has",
                    Bytes(memory_bytes),
                    Bytes(board.ram_bytes),
                    board.name
                ),
            ));
        }
        total += memory_bytes;
        if total > board.partition_ram() {
            return Err(error(
                memory_at,
                format!(
                    "partition `{name}` brings the memory quotas to {}, more than the {} \
                     board `{}` has for partitions ({} of RAM less {} for the kernel)",
                    Bytes(total),
                    Bytes(board.partition_ram()),
                    board.name,
                    Bytes(board.ram_bytes),
                    Bytes(KERNEL_RESERVATION)
                ),
            ));
        }

        partitions.push(Partition {
            name: name.clone(),
            program,
            memory_bytes,
            line,
            memory_line: line_of(text, memory_at),
        });
    }

    Ok(System {
        path: path.to_path_buf(),
        board,
        partitions,
    })
}

fn list(names: &[String]) -> String {
    if names.is_empty() {
        "none".to_owned()
    } else {
        names
            .iter()
            .map(|n| format!("`{n}`"))
            .collect::<Vec<_>>()
            .join(", ")
    }
}

/// Test helpers shared by this crate's unit tests.
#[cfg(test)]
pub(crate) mod testing {
    use std::path::{Path, PathBuf};
    use std::sync::atomic::{AtomicUsize, Ordering};

    use crate::workspace::Workspace;

    /// A throwaway directory, removed when dropped.
    pub struct TempDir(pub PathBuf);

    impl TempDir {
        /// Creates a fresh directory under the system temporary directory.
        pub fn new() -> Self {
            static COUNT: AtomicUsize = AtomicUsize::new(0);
            let dir = std::env::temp_dir().join(format!(
                "exo-tool-test-{}-{}",
                std::process::id(),
                COUNT.fetch_add(1, Ordering::Relaxed)
            ));
            let _ = std::fs::remove_dir_all(&dir);
            std::fs::create_dir_all(&dir).unwrap();
            Self(dir)
        }

        /// Writes `contents` to `relative`, creating directories.
        pub fn write(&self, relative: &str, contents: impl AsRef<[u8]>) -> PathBuf {
            let path = self.0.join(relative);
            std::fs::create_dir_all(path.parent().unwrap()).unwrap();
            std::fs::write(&path, contents).unwrap();
            path
        }

        /// The directory.
        pub fn path(&self) -> &Path {
            &self.0
        }
    }

    impl Drop for TempDir {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }

    /// A made-up workspace: board `qemu-virt` with 1 GiB, guests `hello` and `counter`.
    pub fn workspace() -> (TempDir, Workspace) {
        let dir = TempDir::new();
        dir.write(
            "platform/qemu-virt/board.toml",
            "description = \"test\"\nram = \"1GiB\"\nlinker_script = \"kernel.ld\"\n\
             [qemu]\nbinary = \"qemu-system-aarch64\"\n",
        );
        dir.write("guests/src/bin/hello.rs", "");
        dir.write("guests/src/bin/counter.rs", "");
        let workspace = Workspace::at(dir.path());
        (dir, workspace)
    }
}

#[cfg(test)]
mod tests {
    use super::testing::workspace;
    use super::*;

    /// Checks `text` as `configs/test.toml` and expects an error on `line` containing
    /// `phrase`.
    fn refused(text: &str, line: usize, phrase: &str) -> ConfigError {
        let (dir, workspace) = workspace();
        let path = dir.path().join("configs/test.toml");
        let e = parse(&workspace, &path, text, None).expect_err("accepted a bad configuration");
        assert_eq!(e.path, path);
        assert_eq!(e.line, Some(line), "wrong line in: {e}");
        assert!(e.message.contains(phrase), "`{phrase}` not in: {e}");
        assert!(
            e.to_string()
                .starts_with(&format!("{}:{line}: ", path.display())),
            "bad format: {e}"
        );
        e
    }

    const HELLO: &str = "[[partition]]\nname = \"hello\"\nprogram = \"hello\"\nmemory = \"2MiB\"\n";

    #[test]
    fn accepts_a_good_configuration() {
        let (dir, workspace) = workspace();
        let elf = dir.write("configs/prebuilt/x.elf", b"\x7fELF");
        let text = format!(
            "[system]\nboard = \"qemu-virt\"\n\n{HELLO}\n[[partition]]\nname = \"c-2_X\"\n\
             program = \"prebuilt/x.elf\"\nmemory = 8192\n"
        );
        let path = dir.path().join("configs/test.toml");
        let system = parse(&workspace, &path, &text, None).unwrap();
        assert_eq!(system.board.name, "qemu-virt");
        assert_eq!(system.stem(), "test");
        assert_eq!(system.partitions.len(), 2);
        let hello = &system.partitions[0];
        assert_eq!(
            (
                hello.name.as_str(),
                hello.memory_bytes,
                hello.line,
                hello.memory_line
            ),
            ("hello", 2 << 20, 4, 7)
        );
        assert_eq!(hello.program, Program::Guest("hello".into()));
        assert_eq!(system.partitions[1].program, Program::Elf(elf));
        assert_eq!(system.partitions[1].memory_bytes, 8192);
        assert_eq!(system.partitions[1].line, 9);
        assert_eq!(system.guest_programs(), ["hello"]);
    }

    #[test]
    fn default_board_is_qemu_virt() {
        let (dir, workspace) = workspace();
        let system = parse(&workspace, &dir.path().join("a.toml"), HELLO, None).unwrap();
        assert_eq!(system.board.name, DEFAULT_BOARD);
    }

    #[test]
    fn unknown_key_in_partition() {
        refused(&format!("{HELLO}cores = 2\n"), 5, "unknown field `cores`");
    }

    #[test]
    fn unknown_key_in_system_and_at_top() {
        refused(
            &format!("[system]\nboard = \"qemu-virt\"\nspeed = 1\n{HELLO}"),
            3,
            "speed",
        );
        refused(&format!("{HELLO}\n[extra]\nx = 1\n"), 6, "extra");
    }

    #[test]
    fn syntax_error() {
        refused(&format!("{HELLO}memory = \n"), 5, "");
    }

    #[test]
    fn missing_field() {
        refused(
            "\n[[partition]]\nname = \"hello\"\nprogram = \"hello\"\n",
            2,
            "memory",
        );
    }

    #[test]
    fn quota_larger_than_ram() {
        let text = format!(
            "{HELLO}\n[[partition]]\nname = \"big\"\nprogram = \"hello\"\nmemory = \"2GiB\"\n"
        );
        refused(&text, 9, "larger than the 1 GiB of RAM");
    }

    #[test]
    fn quotas_together_larger_than_partition_ram() {
        let mut text = String::new();
        for (i, memory) in ["512MiB", "400MiB", "100MiB", "4KiB"].iter().enumerate() {
            text += &format!(
                "[[partition]]\nname = \"p{i}\"\nprogram = \"hello\"\nmemory = \"{memory}\"\n"
            );
        }
        // 512 + 400 + 100 = 1012 MiB > 1024 - 16: the third partition crosses the line.
        let e = refused(&text, 12, "brings the memory quotas to 1012 MiB");
        assert!(
            e.message.contains("`p2`") && e.message.contains("1008 MiB"),
            "{e}"
        );
    }

    #[test]
    fn missing_guest_program_lists_the_available_ones() {
        let text = "[[partition]]\nname = \"x\"\nprogram = \"nope\"\nmemory = \"2MiB\"\n";
        let e = refused(text, 3, "no guest program `nope`");
        assert!(e.message.contains("`counter`, `hello`"), "{e}");
    }

    #[test]
    fn missing_elf_file() {
        let text = "[[partition]]\nname = \"x\"\nprogram = \"out/x.elf\"\nmemory = \"2MiB\"\n";
        refused(text, 3, "program ELF file `out/x.elf` not found");
    }

    #[test]
    fn duplicate_name_points_at_the_second() {
        let text = format!("{HELLO}\n{HELLO}");
        refused(
            &text,
            7,
            "duplicate partition name `hello` (first used on line 2)",
        );
    }

    #[test]
    fn bad_names() {
        for name in ["", "has space", "dot.dot", "é", &"x".repeat(33)] {
            let text =
                format!("\n[[partition]]\nname = \"{name}\"\nprogram = \"hello\"\nmemory = 4096\n");
            refused(&text, 3, "bad partition name");
        }
    }

    #[test]
    fn bad_memory() {
        let case = |memory: &str, phrase: &str| {
            let text =
                format!("[[partition]]\nname = \"x\"\nprogram = \"hello\"\nmemory = {memory}\n");
            refused(&text, 4, phrase);
        };
        case("0", "must not be zero");
        case("\"0KiB\"", "must not be zero");
        case("5000", "not a multiple of 4 KiB");
        case("\"6KiB\"", "not a multiple of 4 KiB");
        case("-4096", "negative");
        case("\"2MB\"", "bad memory size `2MB`");
        case("1.5", "byte count");
    }

    #[test]
    fn zero_partitions() {
        refused("[system]\nboard = \"qemu-virt\"\n", 1, "no partitions");
        refused("", 1, "no partitions");
    }

    #[test]
    fn too_many_partitions() {
        let mut text = String::new();
        for i in 0..=MAX_PARTITIONS {
            text +=
                &format!("[[partition]]\nname = \"p{i}\"\nprogram = \"hello\"\nmemory = 4096\n");
        }
        refused(&text, 4 * MAX_PARTITIONS + 1, "too many partitions");
    }

    #[test]
    fn unknown_board() {
        let text = format!("[system]\nboard = \"pdp-11\"\n{HELLO}");
        refused(
            &text,
            2,
            "unknown board `pdp-11`: available boards are `qemu-virt`",
        );
    }

    #[test]
    fn unknown_board_override_has_no_line() {
        let (dir, workspace) = workspace();
        let e = parse(&workspace, &dir.path().join("a.toml"), HELLO, Some("vax")).unwrap_err();
        assert_eq!(e.line, None);
        assert!(e.message.contains("`vax` (given with --board)"), "{e}");
    }

    #[test]
    fn line_of_counts_from_one() {
        assert_eq!(line_of("a\nb\nc", 0), 1);
        assert_eq!(line_of("a\nb\nc", 2), 2);
        assert_eq!(line_of("a\nb\nc", 99), 3);
    }
}
