//! The layering of `docs/architecture.md`, checked on the source: domain modules never reach up
//! into the command adapters, never print, and never name clap or the printer. A move that
//! breaks a rule fails here with the file and line to fix.

use std::path::{Path, PathBuf};

/// The edge of the program: argument parsing, the process inputs and the context built from them,
/// the command adapters and the display. Everything else under `src/` is domain code.
const EDGE: &[&str] = &[
    "main.rs",
    "app.rs",
    "cli.rs",
    "process.rs",
    "context.rs",
    "output.rs",
    "commands",
];

/// What domain code must not contain, and why.
const RULES: &[(&str, &str)] = &[
    (
        "crate::commands",
        "domain code must not import the command adapters",
    ),
    ("clap::", "clap types stay in cli.rs"),
    (
        "output::Printer",
        "domain code reports through progress::Reporter",
    ),
    ("&Printer", "domain code reports through progress::Reporter"),
    (
        "println!(",
        "domain code reports through progress::Reporter",
    ),
    (
        "eprintln!(",
        "domain code reports through progress::Reporter",
    ),
    ("std::io::stdout", "only the printer writes to stdout"),
    ("std::io::stderr", "only the printer writes to stderr"),
];

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).expect("src/ is readable") {
        let path = entry.expect("directory entry").path();
        if path.is_dir() {
            rust_files(&path, out);
        } else if path.extension().is_some_and(|ext| ext == "rs") {
            out.push(path);
        }
    }
}

fn domain_files() -> Vec<PathBuf> {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut files = Vec::new();
    rust_files(&src, &mut files);
    files.retain(|path| {
        let relative = path.strip_prefix(&src).expect("under src/");
        let first = relative
            .components()
            .next()
            .expect("a file has a name")
            .as_os_str();
        !EDGE.iter().any(|edge| first == *edge)
    });
    files.sort();
    files
}

/// The rules `text` (the file `name`) breaks, one `file:line: pattern: why` each; comment lines
/// are not code and do not count.
fn violations(name: &str, text: &str) -> Vec<String> {
    let mut broken = Vec::new();
    for (number, line) in text.lines().enumerate() {
        let code = line.trim_start();
        if code.starts_with("//") {
            continue;
        }
        for (pattern, why) in RULES {
            if code.contains(pattern) {
                broken.push(format!("{name}:{}: `{pattern}`: {why}", number + 1));
            }
        }
    }
    broken
}

#[test]
fn domain_modules_stay_below_the_command_adapters_and_the_display() {
    let files = domain_files();
    assert!(
        files.len() > 40,
        "the domain holds most of the crate; found only {files:?}"
    );
    let broken: Vec<String> = files
        .iter()
        .flat_map(|path| {
            let text = std::fs::read_to_string(path).expect("source file is readable");
            violations(&path.display().to_string(), &text)
        })
        .collect();
    assert!(broken.is_empty(), "layering broken:\n{}", broken.join("\n"));
}

#[test]
fn the_scan_finds_a_broken_rule_and_skips_comments() {
    let text = "//! Talks to the printer (`output::Printer`) only in docs.\n\
                use crate::commands::push;\n\
                fn show(p: &Printer) { println!(\"x\"); }\n";
    assert_eq!(
        violations("gitops/x.rs", text),
        [
            "gitops/x.rs:2: `crate::commands`: domain code must not import the command adapters",
            "gitops/x.rs:3: `&Printer`: domain code reports through progress::Reporter",
            "gitops/x.rs:3: `println!(`: domain code reports through progress::Reporter",
        ]
    );
    let commands = Path::new(env!("CARGO_MANIFEST_DIR")).join("src/commands");
    assert!(
        domain_files()
            .iter()
            .all(|path| !path.starts_with(&commands)),
        "command adapters are not domain code"
    );
}
