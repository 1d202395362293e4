//! registries_conf.rs's unit tests: merging, endpoints, short names and what is refused.

use super::*;

/// A configuration of `text` alone (shortnames.rs's tests use it too).
pub(crate) fn conf(text: &str) -> Result<RegistriesConf, ConfError> {
    let t = tempfile::tempdir().unwrap();
    let p = t.path().join("registries.conf");
    std::fs::write(&p, text).unwrap();
    let mut c = RegistriesConf::default();
    c.merge_file(&p)?;
    Ok(c)
}

fn r(s: &str) -> Reference {
    Reference::parse(s).unwrap()
}

#[test]
fn mirrors_come_first_then_the_registry() {
    let c = conf(
        r#"
[[registry]]
prefix = "docker.io"
location = "docker.io"
[[registry.mirror]]
location = "127.0.0.1:5000"
insecure = true
"#,
    )
    .unwrap();
    let e = c.endpoints(&r("busybox")).unwrap();
    assert_eq!(e.len(), 2);
    assert_eq!(
        (e[0].host.as_str(), e[0].insecure, e[0].mirror),
        ("127.0.0.1:5000", true, true)
    );
    assert_eq!(
        (e[1].host.as_str(), e[1].mirror),
        ("registry-1.docker.io", false)
    );
    // another registry is untouched
    let e = c.endpoints(&r("quay.io/a/b")).unwrap();
    assert_eq!(
        e,
        [Endpoint {
            host: "quay.io".into(),
            insecure: false,
            mirror: false
        }]
    );
}

#[test]
fn blocked_location_and_the_longest_prefix() {
    let c = conf(
        r#"
[[registry]]
location = "quay.io"
blocked = true
[[registry]]
prefix = "quay.io/ok"
location = "internal.example:5000"
insecure = true
"#,
    )
    .unwrap();
    assert!(matches!(
        c.endpoints(&r("quay.io/x/y")),
        Err(ConfError::Blocked(_))
    ));
    let e = c.endpoints(&r("quay.io/ok/app")).unwrap();
    assert_eq!(
        e,
        [Endpoint {
            host: "internal.example:5000".into(),
            insecure: true,
            mirror: false
        }]
    );
}

#[test]
fn short_names_by_alias_then_search_list() {
    let c = conf(
        r#"
unqualified-search-registries = ["r1.example", "r2.example:5000"]
[aliases]
"app" = "quay.io/team/app"
"#,
    )
    .unwrap();
    assert_eq!(c.qualify("app:1"), ["quay.io/team/app:1"]);
    assert_eq!(
        c.qualify("tool"),
        ["r1.example/tool", "r2.example:5000/tool"]
    );
    assert_eq!(c.qualify("quay.io/x/y"), ["quay.io/x/y"]);
    assert_eq!(c.qualify("localhost/y"), ["localhost/y"]);
    assert_eq!(RegistriesConf::default().qualify("busybox"), ["busybox"]);
    assert_eq!(c.short_name("app").1, Source::Alias);
    assert_eq!(c.short_name("tool").1, Source::Search);
    assert_eq!(c.short_name_mode(), ShortNameMode::Permissive);
}

#[test]
fn short_name_mode_is_read_and_checked() {
    let c = conf("short-name-mode = \"enforcing\"\n").unwrap();
    assert_eq!(c.short_name_mode(), ShortNameMode::Enforcing);
    let c = conf("short-name-mode = \"disabled\"\n").unwrap();
    assert_eq!(c.short_name_mode(), ShortNameMode::Disabled);
    let e = conf("short-name-mode = \"strict\"\n").unwrap_err();
    assert!(e.to_string().contains("expected enforcing"), "{e}");
}

#[test]
fn what_imago_cannot_do_is_said() {
    let e = conf("[[registry]]\nprefix = \"*.example.com\"\n").unwrap_err();
    assert!(e.to_string().contains("wildcard"), "{e}");
    let e = conf(
        "[[registry]]\nprefix = \"docker.io\"\n[[registry.mirror]]\nlocation = \"m.example/hub\"\n",
    )
    .unwrap_err();
    assert!(e.to_string().contains("with a path"), "{e}");
    let e = conf("unqualified-search-registries = 3\n").unwrap_err();
    assert!(e.to_string().contains("registries.conf"), "{e}");
}

/// The cache of `RegistriesConf::load_cached` (registries_conf_cache.rs).
mod cached {
    use std::time::{Duration, SystemTime};

    use super::*;

    /// Any file counts as settled: the tests' files are seconds old at most.
    const SETTLED_NOW: Duration = Duration::ZERO;

    struct Fixture {
        _dir: tempfile::TempDir,
        file: PathBuf,
        cache: PathBuf,
    }

    /// One registries.conf of `text`, with a modification time in the past.
    fn fixture(text: &str) -> Fixture {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("registries.conf");
        write_old(&file, text);
        let cache = dir.path().join("cache.json");
        Fixture {
            _dir: dir,
            file,
            cache,
        }
    }

    fn write_old(path: &Path, text: &str) {
        std::fs::write(path, text).unwrap();
        let past = SystemTime::UNIX_EPOCH + Duration::from_secs(1_600_000_000);
        let f = std::fs::File::options().write(true).open(path).unwrap();
        f.set_modified(past).unwrap();
    }

    fn alias(c: &RegistriesConf) -> String {
        c.qualify("app").join(",")
    }

    /// Rewrite the cache's JSON with `edit`.
    fn edit_cache(cache: &Path, edit: impl FnOnce(&mut serde_json::Value)) {
        let mut v: serde_json::Value =
            serde_json::from_slice(&std::fs::read(cache).unwrap()).unwrap();
        edit(&mut v);
        std::fs::write(cache, serde_json::to_vec(&v).unwrap()).unwrap();
    }

    #[test]
    fn unchanged_files_are_read_from_the_cache() {
        let f = fixture("[aliases]\n\"app\" = \"quay.io/a/app\"\n");
        let files = [f.file.clone()];
        let c = cache::load(&files, &f.cache, SETTLED_NOW).unwrap();
        assert_eq!(alias(&c), "quay.io/a/app");
        assert!(f.cache.is_file(), "no cache written");
        // Only a cache that is read can answer what no file says.
        edit_cache(&f.cache, |v| {
            v["conf"]["aliases"]["app"] = "quay.io/cached/app".into();
        });
        let c = cache::load(&files, &f.cache, SETTLED_NOW).unwrap();
        assert_eq!(alias(&c), "quay.io/cached/app");
        // The plain load never reads it.
        assert_eq!(
            alias(&RegistriesConf::from_files(&files).unwrap()),
            "quay.io/a/app"
        );
    }

    #[test]
    fn a_killed_writers_temp_file_is_removed_by_the_next_write() {
        let f = fixture("[aliases]\n\"app\" = \"quay.io/a/app\"\n");
        let dir = f.cache.parent().unwrap().to_path_buf();
        // A writer that cannot run (a pid above pid_max's ceiling), and a temp file of
        // another kind, which stays.
        let host = imago_store::atomic::host_tag();
        let dead = dir.join(format!("4294967295.{host}-1-0-cache.json"));
        let live = dir.join(format!("4294967295.{host}-1-0-other"));
        std::fs::write(&dead, b"{half").unwrap();
        std::fs::write(&live, b"not ours to judge").unwrap();
        cache::load(std::slice::from_ref(&f.file), &f.cache, SETTLED_NOW).unwrap();
        assert!(f.cache.is_file(), "no cache written");
        assert!(!dead.exists(), "a dead writer's temp file was left");
        assert!(live.exists(), "another kind of temp file was removed");
        let names: Vec<String> = (std::fs::read_dir(&dir).unwrap().flatten())
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .collect();
        let mut names = names;
        names.sort();
        let mut want = vec![
            "4294967295.".to_owned() + &host + "-1-0-other",
            "cache.json".to_owned(),
            "registries.conf".to_owned(),
        ];
        want.sort();
        assert_eq!(names, want);
    }

    #[test]
    fn a_changed_file_is_parsed_again() {
        let f = fixture("[aliases]\n\"app\" = \"quay.io/a/app\"\n");
        let files = [f.file.clone()];
        cache::load(&files, &f.cache, SETTLED_NOW).unwrap();
        // Same size, same (set back) modification time: only the change time differs.
        std::thread::sleep(Duration::from_millis(20));
        write_old(&f.file, "[aliases]\n\"app\" = \"quay.io/b/app\"\n");
        let c = cache::load(&files, &f.cache, SETTLED_NOW).unwrap();
        assert_eq!(alias(&c), "quay.io/b/app");
        // And the cache now holds the new parse.
        let again = cache::load(&files, &f.cache, SETTLED_NOW).unwrap();
        assert_eq!(alias(&again), "quay.io/b/app");
        // One more file (a drop-in) is another key.
        let drop_in = f.file.with_file_name("50-more.conf");
        write_old(&drop_in, "[aliases]\n\"app\" = \"quay.io/c/app\"\n");
        let c = cache::load(&[f.file.clone(), drop_in], &f.cache, SETTLED_NOW).unwrap();
        assert_eq!(alias(&c), "quay.io/c/app");
    }

    #[test]
    fn a_bad_cache_is_ignored_and_replaced() {
        let f = fixture("[aliases]\n\"app\" = \"quay.io/a/app\"\n");
        let files = [f.file.clone()];
        std::fs::write(&f.cache, "{\"version\": 1, \"files\": [").unwrap();
        let c = cache::load(&files, &f.cache, SETTLED_NOW).unwrap();
        assert_eq!(alias(&c), "quay.io/a/app");
        let v: serde_json::Value =
            serde_json::from_slice(&std::fs::read(&f.cache).unwrap()).unwrap();
        assert_eq!(v["conf"]["aliases"]["app"], "quay.io/a/app", "{v}");
        // Another version's cache is not read.
        edit_cache(&f.cache, |v| {
            v["version"] = 99.into();
            v["conf"]["aliases"]["app"] = "quay.io/cached/app".into();
        });
        let c = cache::load(&files, &f.cache, SETTLED_NOW).unwrap();
        assert_eq!(alias(&c), "quay.io/a/app");
        // Nor one that brings what a parse refuses.
        edit_cache(&f.cache, |v| {
            v["conf"]["aliases"]["app"] = "quay.io/cached/app".into();
            v["conf"]["registries"]["*.example.com"] = serde_json::json!({});
        });
        let c = cache::load(&files, &f.cache, SETTLED_NOW).unwrap();
        assert_eq!(alias(&c), "quay.io/a/app");
    }

    #[test]
    fn young_files_and_failures_are_not_cached() {
        let f = fixture("[aliases]\n\"app\" = \"quay.io/a/app\"\n");
        std::fs::write(&f.file, "[aliases]\n\"app\" = \"quay.io/a/app\"\n").unwrap();
        let files = [f.file.clone()];
        let c = cache::load(&files, &f.cache, cache::SETTLED).unwrap();
        assert_eq!(alias(&c), "quay.io/a/app");
        assert!(!f.cache.exists(), "a file written just now was cached");
        write_old(&f.file, "[[registry]]\nprefix = \"*.example.com\"\n");
        for _ in 0..2 {
            let e = cache::load(&files, &f.cache, SETTLED_NOW).unwrap_err();
            assert!(e.to_string().contains("wildcard"), "{e}");
        }
        assert!(!f.cache.exists(), "a refused file was cached");
    }
}
