//! What a COPY/ADD source names in the source view (the build context, a stage or an
//! image): a wildcard's matches, or the one path, which must exist and not be
//! .dockerignored (a symlink leading out of the context is named in the error); and the
//! tree of a directory source, whose contents (never the dir itself) are copied, less
//! `--exclude` and .dockerignore.
//!
//! Never: decides where a single file lands (`plan`) or writes anything.

use super::item::item_for;
use super::{join, CopyError, CopySpec, Item, Sources};
use crate::fsview::{components, Entry, Kind, LowerView};
use crate::glob;

/// The source paths one source names: the wildcard's matches, or the one path, which
/// must exist and not be ignored.
pub(super) fn source_matches(src: &Sources<'_>, base: &str) -> Result<Vec<Vec<String>>, CopyError> {
    let pattern = components(base).join("/");
    let mut matches: Vec<Vec<String>> = Vec::new();
    if glob::has_wildcard(&pattern) {
        walk_matches(src, &[], &pattern, &mut matches)?;
        return Ok(matches);
    }
    let real = src.view.resolve(&pattern, true);
    let visible = !src.context || !(src.ignored)(&real.join("/"));
    if visible && (real.is_empty() || src.view.lookup(&real).is_some()) {
        return Ok(vec![real]);
    }
    // Say why when a symlink leads out of the context (it was resolved inside).
    if let Some((link, target)) = src.view.escaping_link(&pattern) {
        if src.context {
            return Err(CopyError::LinkOutside {
                path: pattern,
                link,
                target,
            });
        }
    }
    Err(CopyError::NotFound(pattern))
}

/// The entry a matched path leads to, its symlinks followed (inside the view).
pub(super) fn follow(view: &LowerView, m: &[String]) -> Option<Entry> {
    let r = view.resolve(&m.join("/"), true);
    view.lookup(&r)
}

fn walk_matches(
    src: &Sources<'_>,
    dir: &[String],
    pattern: &str,
    out: &mut Vec<Vec<String>>,
) -> Result<(), CopyError> {
    let depth = pattern.split('/').count();
    let double = pattern.contains("**");
    for name in src.view.read_dir(dir) {
        let p = join(dir, &[name]);
        let rel = p.join("/");
        if src.context && (src.ignored)(&rel) {
            continue;
        }
        if glob::path_match(pattern, &rel)? {
            out.push(p.clone());
            continue;
        }
        if (double || p.len() < depth) && src.view.lookup(&p).is_some_and(|e| e.kind == Kind::Dir) {
            walk_matches(src, &p, pattern, out)?;
        }
    }
    Ok(())
}

/// A directory source: its contents (never the dir itself) go under `target` (71).
pub(super) fn add_tree(
    spec: &CopySpec,
    src: &Sources<'_>,
    dir: &[String],
    target: &[String],
    items: &mut Vec<Item>,
) -> Result<(), CopyError> {
    let root_rel = dir.to_vec();
    let mut stack = vec![(root_rel.clone(), target.to_vec())];
    // The destination dir itself: created like COPY-created parents.
    while let Some((d, t)) = stack.pop() {
        for name in src.view.read_dir(&d) {
            let p = join(&d, std::slice::from_ref(&name));
            let rel_ctx = p.join("/");
            if src.context && (src.ignored)(&rel_ctx) {
                continue;
            }
            let rel_in_src = p[root_rel.len()..].join("/");
            if spec
                .excludes
                .iter()
                .any(|x| glob::path_or_parent_match(x, &rel_in_src).unwrap_or(false))
            {
                continue;
            }
            let Some(e) = src.view.lookup(&p) else {
                continue;
            };
            let dest = join(&t, &[name]);
            if e.kind == Kind::Dir {
                items.push(item_for(spec, src, &e, dest.clone())?);
                stack.push((p, dest));
            } else if e.kind != Kind::Other {
                items.push(item_for(spec, src, &e, dest)?);
            }
        }
    }
    // Make sure the target dir exists even for an empty source dir.
    items.push(Item {
        dest: target.to_vec(),
        kind: Kind::Dir,
        data: None,
        link: None,
        mode: u32::MAX, // marker: "a destination dir", created like a parent (see apply)
        uid: 0,
        gid: 0,
        mtime: 0,
    });
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::super::fixture::{fx, none, run, spec};
    use super::*;

    #[test]
    fn g71_dir_source_copies_contents() {
        for (src, dst) in [
            ("sub/dir1", "d6"),
            ("sub/dir1/", "d4"),
            ("sub/dir1/.", "d5"),
        ] {
            let f = fx(&["sub/dir1/dir2/foo"]);
            let m = run(&f, spec(&[src], dst), &none).unwrap();
            assert_eq!(
                m[&format!("{dst}/dir2/foo")],
                "data of sub/dir1/dir2/foo",
                "{src}"
            );
            assert!(!m.contains_key(&format!("{dst}/dir1/")));
        }
    }

    #[test]
    fn g72_wildcards() {
        let f = fx(&["a.go", "b.go", "c.txt", "sub/dir1/dir2/foo"]);
        let m = run(&f, spec(&["*.go"], "/gofiles/"), &none).unwrap();
        assert!(
            m.contains_key("gofiles/a.go")
                && m.contains_key("gofiles/b.go")
                && !m.contains_key("gofiles/c.txt")
        );
        let f = fx(&["sub/dir1/dir2/foo"]);
        let m = run(&f, spec(&["sub/*/dir2/foo"], "/d2/"), &none).unwrap();
        assert!(m.contains_key("d2/foo"));
        let f = fx(&["sub/dir1/dir2/foo"]);
        let m = run(&f, spec(&["sub/*"], "/subdest/"), &none).unwrap();
        assert!(m.contains_key("subdest/dir2/foo"), "{m:?}");
        let f = fx(&["f1.go"]);
        let m = run(&f, spec(&["f*.go"], "foo2.go"), &none).unwrap();
        assert!(m.contains_key("foo2.go"));
        let f = fx(&["a", "b"]);
        assert!(matches!(
            run(&f, spec(&["a", "b"], "/x"), &none),
            Err(CopyError::NeedDirDest(_))
        ));
    }

    #[test]
    fn g73_nomatch_wildcard_ok_with_another_source() {
        let f = fx(&["foo"]);
        let m = run(&f, spec(&["foo", "nomatch*"], "/"), &none).unwrap();
        assert!(m.contains_key("foo"));
        let f = fx(&["foo"]);
        assert!(run(&f, spec(&["nomatch*"], "/"), &none).is_err());
    }

    #[test]
    fn g74_dot_copies_context_minus_ignored() {
        let f = fx(&["foo", "bar", "baz", "bay"]);
        let ig = |p: &str| p.starts_with("ba") && p != "bay";
        let m = run(&f, spec(&["."], "all/"), &ig).unwrap();
        let files: Vec<&String> = m.keys().filter(|k| !k.ends_with('/')).collect();
        assert_eq!(files, ["all/bay", "all/foo"]);
        let f = fx(&["bar"]);
        assert!(matches!(
            run(&f, spec(&["bar"], "/"), &ig),
            Err(CopyError::NotFound(_))
        ));
    }

    #[test]
    fn g85_exclude() {
        let f = fx(&["d/a.txt", "d/b.md"]);
        let mut s = spec(&["d"], "/o/");
        s.excludes = vec!["*.txt".into()];
        let m = run(&f, s, &none).unwrap();
        assert!(m.contains_key("o/b.md") && !m.contains_key("o/a.txt"));
        let f = fx(&["d/a.txt"]);
        let mut s = spec(&["d"], "/o/");
        s.excludes = vec!["*".into()];
        let m = run(&f, s, &none).unwrap();
        assert!(!m.contains_key("o/a.txt"));
    }

    #[test]
    fn g87_source_clamped_to_context() {
        let f = fx(&["x"]);
        let m = run(&f, spec(&["../x"], "/a"), &none).unwrap();
        assert!(m.contains_key("a"));
        let f = fx(&["x"]);
        let m = run(&f, spec(&["/x"], "/b"), &none).unwrap();
        assert!(m.contains_key("b"));
    }

    #[test]
    fn g88_odd_names() {
        let f = fx(&["test-äöü.txt", "test-%C3%A4.txt", "test+aou.txt"]);
        let m = run(&f, spec(&["."], "/"), &none).unwrap();
        for n in ["test-äöü.txt", "test-%C3%A4.txt", "test+aou.txt"] {
            assert!(m.contains_key(n), "{n}");
        }
    }

    #[test]
    fn g76_symlinked_dir_on_source_path_followed() {
        let f = fx(&["real/foo"]);
        std::os::unix::fs::symlink("real", f.ctx.join("link")).unwrap();
        let m = run(&f, spec(&["link/foo"], "/x"), &none).unwrap();
        assert_eq!(m["x"], "data of real/foo");
    }

    #[test]
    fn copy_of_a_link_out_of_the_context_says_so() {
        let f = fx(&["a"]);
        std::os::unix::fs::symlink("/etc/hostname", f.ctx.join("link")).unwrap();
        let e = run(&f, spec(&["link"], "/x"), &none).unwrap_err();
        assert_eq!(
            e.to_string(),
            "\"/link\": not found: the symlink `link` points outside the build context (to `/etc/hostname`)"
        );
        // A link that stays inside is followed as before.
        std::os::unix::fs::symlink("a", f.ctx.join("ok")).unwrap();
        assert_eq!(
            run(&f, spec(&["ok"], "/x"), &none).unwrap()["x"],
            "data of a"
        );
    }
}
