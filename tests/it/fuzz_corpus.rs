//! The fuzz corpus as ordinary tests: every file of fuzz/corpus/<target>/ (crafted cases
//! and every crash fuzzing found) goes through the same entry function the cargo-fuzz
//! target calls (fuzz/src/lib.rs, compiled here as a module). A panic names the file.

#[path = "../../fuzz/src/lib.rs"]
mod entries;

use std::path::PathBuf;

fn corpus_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../fuzz/corpus")
}

fn run_target(target: &str) {
    let Some(f) = entries::entry(target) else {
        panic!("no fuzz entry named {target}");
    };
    let dir = corpus_dir().join(target);
    let mut files: Vec<PathBuf> = match std::fs::read_dir(&dir) {
        Ok(rd) => rd.flatten().map(|e| e.path()).collect(),
        Err(e) => panic!("{}: {e}", dir.display()),
    };
    files.sort();
    assert!(!files.is_empty(), "{} holds no case", dir.display());
    for file in &files {
        let data = std::fs::read(file).unwrap_or_else(|e| panic!("{}: {e}", file.display()));
        let caught = std::panic::catch_unwind(|| f(&data));
        assert!(caught.is_ok(), "fuzz case {} panics", file.display());
    }
}

#[test]
fn every_target_has_a_corpus() {
    for t in entries::TARGETS {
        assert!(corpus_dir().join(t).is_dir(), "fuzz/corpus/{t} is missing");
    }
}

macro_rules! corpus_tests {
    ($($name:ident),*) => {$(
        #[test]
        fn $name() {
            run_target(stringify!($name));
        }
    )*};
}

corpus_tests!(
    tar_unpack,
    oci_json,
    reference,
    dockerfile,
    expand,
    ignore,
    www_authenticate,
    registries_conf,
    squash
);
