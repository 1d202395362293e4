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
