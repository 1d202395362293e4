//! The checked-in completions and man pages are what the clap definitions generate now:
//! regenerate into a temporary directory and compare, file by file, both ways.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

const FIX: &str = "run scripts/gen-docs.sh and commit completions/ and man/";

/// Every file under `root/dir`, relative to `root`.
fn tree(root: &Path, dir: &str) -> BTreeSet<PathBuf> {
    let mut out = BTreeSet::new();
    let mut todo = vec![root.join(dir)];
    while let Some(d) = todo.pop() {
        let Ok(entries) = std::fs::read_dir(&d) else {
            continue;
        };
        for e in entries {
            let p = e.expect("read a directory entry").path();
            if p.is_dir() {
                todo.push(p);
            } else {
                out.insert(p.strip_prefix(root).expect("under root").to_path_buf());
            }
        }
    }
    out
}

fn scratch() -> tempfile::TempDir {
    match std::env::var_os("IMAGO_TEST_TMP") {
        Some(d) if Path::new(&d).is_dir() => tempfile::tempdir_in(d),
        _ => tempfile::tempdir(),
    }
    .expect("a temporary directory")
}

#[test]
fn checked_in_files_are_fresh() {
    let repo = xtask::repo_root();
    let tmp = scratch();
    let files = xtask::files().expect("generate");
    xtask::write_all(tmp.path(), &files).expect("write the generated files");
    let mut problems = Vec::new();
    for dir in xtask::OUTPUT_DIRS {
        let want = tree(tmp.path(), dir);
        let have = tree(&repo, dir);
        for p in want.difference(&have) {
            problems.push(format!("{} is missing", p.display()));
        }
        for p in have.difference(&want) {
            problems.push(format!("{} is no longer generated", p.display()));
        }
        for p in want.intersection(&have) {
            let new = std::fs::read(tmp.path().join(p)).expect("read a generated file");
            let old = std::fs::read(repo.join(p)).expect("read a checked-in file");
            if new != old {
                problems.push(format!("{} is stale", p.display()));
            }
        }
    }
    assert!(problems.is_empty(), "{}\n{FIX}", problems.join("\n"));
    assert!(files.len() >= 8 * 4, "only {} files generated", files.len());
}
