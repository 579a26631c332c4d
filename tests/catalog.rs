//! The checked-in `schemas/` and `tools/` are exactly what `referral-mcp catalog`
//! generates from the code now: a changed schema, description or answer, or a tool added
//! without its pages, fails here.

use std::collections::BTreeMap;
use std::path::Path;

fn files(root: &Path) -> BTreeMap<String, String> {
    let mut out = BTreeMap::new();
    for dir in ["schemas", "tools"] {
        let Ok(entries) = std::fs::read_dir(root.join(dir)) else {
            continue;
        };
        for e in entries {
            let path = e.unwrap().path();
            let name = format!("{dir}/{}", path.file_name().unwrap().to_string_lossy());
            out.insert(name, std::fs::read_to_string(&path).unwrap());
        }
    }
    out
}

#[test]
fn checked_in_catalog_matches_the_code() {
    let tmp = tempfile::tempdir().unwrap();
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_referral-mcp"))
        .args(["catalog", "--out"])
        .arg(tmp.path())
        .env_remove("DATABASE_URL")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "catalog failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let fresh = files(tmp.path());
    let checked_in = files(Path::new(env!("CARGO_MANIFEST_DIR")));
    // Seventeen tools in four toolsets: two schemas and one page each, plus the index.
    assert_eq!(
        fresh.keys().filter(|k| k.starts_with("schemas/")).count(),
        34
    );
    assert_eq!(fresh.keys().filter(|k| k.starts_with("tools/")).count(), 18);
    let fix = "run `cargo run -- catalog --out .` and commit schemas/ and tools/";
    for (name, text) in &fresh {
        match checked_in.get(name) {
            None => panic!("{name} is missing from the repository; {fix}"),
            Some(old) if old != text => panic!("{name} is out of date; {fix}"),
            Some(_) => {}
        }
    }
    for name in checked_in.keys() {
        assert!(
            fresh.contains_key(name),
            "{name} is no longer generated; delete it, or {fix}"
        );
    }
}
