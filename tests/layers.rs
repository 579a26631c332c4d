//! The layers point one way (README, "Architecture"): store ← core ← (auth, billing) ←
//! config ← api ← (mcp, http) ← cli. Each module may use only those before it, and the
//! two faces never use each other. This test reads every file under `src/` and fails on an
//! import that points the wrong way, naming the file and the line.

use std::path::{Path, PathBuf};

/// For each top-level module, the modules it may import from.
const ALLOWED: &[(&str, &[&str])] = &[
    ("store", &[]),
    ("core", &["store"]),
    ("auth", &["core", "store"]),
    ("billing", &["core", "store"]),
    ("webhooks", &["core", "store"]),
    ("config", &["core", "store", "auth", "billing"]),
    ("api", &["core", "store", "auth"]),
    ("mcp", &["core", "store", "auth", "config", "api"]),
    (
        "http",
        &["core", "store", "auth", "config", "api", "webhooks"],
    ),
    (
        "cli",
        &[
            "core", "store", "auth", "billing", "config", "api", "mcp", "http", "webhooks",
        ],
    ),
];

const MODULES: &[&str] = &[
    "store", "core", "auth", "billing", "webhooks", "config", "api", "mcp", "http", "cli",
];

fn files(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            files(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

/// The top-level module a file under `src/` belongs to (`src/core/admin.rs` → `core`).
fn module_of(src: &Path, file: &Path) -> Option<String> {
    let rel = file.strip_prefix(src).ok()?;
    let first = rel.components().next()?.as_os_str().to_str()?;
    Some(first.trim_end_matches(".rs").to_owned())
}

/// Every `crate::<module>` a line names, including inside `use crate::{a, b::c}`.
fn named_modules(line: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut rest = line;
    while let Some(i) = rest.find("crate::") {
        rest = &rest[i + "crate::".len()..];
        if let Some(group) = rest.strip_prefix('{') {
            let end = group.find('}').unwrap_or(group.len());
            for part in group[..end].split(',') {
                let name: String = part
                    .trim()
                    .chars()
                    .take_while(|c| c.is_alphanumeric() || *c == '_')
                    .collect();
                out.push(name);
            }
        } else {
            out.push(
                rest.chars()
                    .take_while(|c| c.is_alphanumeric() || *c == '_')
                    .collect(),
            );
        }
    }
    out
}

fn violations() -> Vec<String> {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut all = Vec::new();
    files(&src, &mut all);
    let mut bad = Vec::new();
    for file in all {
        let Some(module) = module_of(&src, &file) else {
            continue;
        };
        let Some((_, allowed)) = ALLOWED.iter().find(|(m, _)| *m == module) else {
            continue; // lib.rs, main.rs: the crate root
        };
        let text = std::fs::read_to_string(&file).unwrap();
        for (n, line) in text.lines().enumerate() {
            if line.trim_start().starts_with("//") {
                continue;
            }
            for used in named_modules(line) {
                if used != module
                    && MODULES.contains(&used.as_str())
                    && !allowed.contains(&used.as_str())
                {
                    bad.push(format!(
                        "{}:{}: {module} imports {used}: {}",
                        file.display(),
                        n + 1,
                        line.trim()
                    ));
                }
            }
        }
    }
    bad
}

#[test]
fn imports_point_one_way_and_the_two_faces_never_use_each_other() {
    let bad = violations();
    assert!(
        bad.is_empty(),
        "imports against the layering:\n{}",
        bad.join("\n")
    );
}

#[test]
fn the_check_sees_grouped_and_plain_imports() {
    // The check itself must be able to fail: both spellings are read.
    assert_eq!(named_modules("use crate::http::rest;"), ["http"]);
    assert_eq!(
        named_modules("use crate::{mcp::Caller, core::Error};"),
        ["mcp", "core"]
    );
    assert_eq!(
        named_modules("let x = crate::cli::run(crate::store::Store::x());"),
        ["cli", "store"]
    );
}
