//! Planning a COPY/ADD: the destination (relative to WORKDIR, a trailing `/` or several
//! sources make it a directory), where each matched source lands in it (`--parents`
//! keeps the matched path), heredoc files, URL and `--checksum` refusals, and ADD's
//! choice to extract a local archive.
//!
//! Never: reads the source tree itself (`sources` walks it) or writes anything.

use super::add_tar::is_archive;
use super::item::item_for;
use super::sources::{add_tree, follow, source_matches};
use super::{join, CopyError, CopySpec, Data, Item, Sources};
use crate::fsview::{components, Kind};
use crate::glob;

fn is_url(s: &str) -> bool {
    s.starts_with("http://") || s.starts_with("https://")
}

/// The destination as an absolute container path, and whether it names a directory.
pub fn dest_path(dest: &str, workdir: &str) -> (Vec<String>, bool) {
    let slash = dest.is_empty() || dest.ends_with('/') || dest == "." || dest.ends_with("/.");
    let wd = if workdir.is_empty() { "/" } else { workdir };
    let abs = if dest.starts_with('/') {
        dest.to_string()
    } else {
        format!("{wd}/{dest}")
    };
    (components(&abs), slash)
}

/// Where a COPY/ADD writes: the destination's components and how its sources land.
struct Target<'d> {
    dest: Vec<String>,
    /// The destination ends in `/` (or a wildcard matched several files).
    forced_dir: bool,
    /// How many sources (paths and heredocs) the instruction has.
    nsrc: usize,
    dest_is_dir: &'d dyn Fn(&[String]) -> bool,
}

impl Target<'_> {
    /// True when a file source goes into the destination rather than becoming it.
    fn goes_into_dir(&self) -> bool {
        self.forced_dir || self.nsrc > 1 || (self.dest_is_dir)(&self.dest)
    }
}

/// Resolve a COPY/ADD into the items to write. `dest_is_dir` tells whether the
/// destination already exists as a directory in the parent state.
pub fn plan(
    spec: &CopySpec,
    src: &Sources<'_>,
    dest_is_dir: &dyn Fn(&[String]) -> bool,
) -> Result<Vec<Item>, CopyError> {
    check_sources(spec)?;
    let (dest, slash) = dest_path(&spec.dest, &spec.workdir);
    let mut t = Target {
        dest,
        forced_dir: slash,
        nsrc: spec.sources.len() + spec.inline.len(),
        dest_is_dir,
    };
    if t.nsrc > 1 && !slash && !dest_is_dir(&t.dest) {
        return Err(CopyError::NeedDirDest(if spec.add {
            "ADD"
        } else {
            "COPY"
        }));
    }
    let mut items = inline_items(spec, &t);
    let mut matched_total = 0usize;
    for s in &spec.sources {
        let (base, prefix_len) = split_parents(s, spec.parents);
        let matches = source_matches(src, &base)?;
        // Only a wildcard matches several paths: they all go into the destination.
        if matches.len() > 1 {
            t.forced_dir = true;
        }
        matched_total += matches.len();
        for m in matches {
            match_items(spec, src, &t, &m, prefix_len, &mut items)?;
        }
    }
    if matched_total == 0 && spec.inline.is_empty() {
        let first = (spec.sources.first())
            .map(|s| components(s).join("/"))
            .unwrap_or_default();
        return Err(CopyError::NotFound(first));
    }
    Ok(items)
}

/// URLs (COPY never, ADD downloads them before planning) and `--checksum` (URLs only).
fn check_sources(spec: &CopySpec) -> Result<(), CopyError> {
    if let Some(s) = spec.sources.iter().find(|s| is_url(s)) {
        return Err(match spec.add {
            true => CopyError::UrlUnsupported(s.clone()),
            false => CopyError::UrlForCopy,
        });
    }
    if spec.checksum.is_some() {
        return Err(CopyError::ChecksumLocal);
    }
    Ok(())
}

/// Heredocs: files named after their delimiter.
fn inline_items(spec: &CopySpec, t: &Target<'_>) -> Vec<Item> {
    let mode = (spec.chmod.as_ref()).map_or(0o644, |c| c.apply(0o644, false));
    let (uid, gid) = spec.chown.unwrap_or((0, 0));
    (spec.inline.iter())
        .map(|(n, body)| Item {
            dest: match t.goes_into_dir() {
                true => join(&t.dest, std::slice::from_ref(n)),
                false => t.dest.clone(),
            },
            kind: Kind::File,
            data: Some(Data::Inline(body.clone())),
            link: None,
            mode,
            uid,
            gid,
            mtime: 0,
        })
        .collect()
}

/// The items of one matched source path `m`.
fn match_items(
    spec: &CopySpec,
    src: &Sources<'_>,
    t: &Target<'_>,
    m: &[String],
    prefix_len: usize,
    items: &mut Vec<Item>,
) -> Result<(), CopyError> {
    let entry = match m.is_empty() {
        true => src.view.lookup(&[]).map(|mut e| {
            e.kind = Kind::Dir;
            e
        }),
        false => src.view.lookup(m),
    };
    let Some(mut entry) = entry else {
        return Ok(());
    };
    if entry.kind == Kind::Symlink {
        // A wildcard match that is a symlink: copy the link itself.
        if let Some(e) = follow(src.view, m) {
            entry = e;
        }
    }
    // With --parents the matched path (after `/./`, or all of it) is kept.
    let keep: Vec<String> = match spec.parents {
        true => m[prefix_len.min(m.len())..].to_vec(),
        false => Vec::new(),
    };
    if entry.kind == Kind::Dir {
        return add_tree(spec, src, m, &join(&t.dest, &keep), items);
    }
    let fname = m.last().cloned().unwrap_or_default();
    let target = if spec.parents {
        join(&t.dest, &keep)
    } else if t.goes_into_dir() {
        join(&t.dest, &[fname])
    } else {
        t.dest.clone()
    };
    let last = m.last().map(String::as_str).unwrap_or("");
    if (spec.excludes.iter()).any(|x| glob::path_or_parent_match(x, last).unwrap_or(false)) {
        return Ok(());
    }
    let archive = spec.add
        && spec.unpack != Some(false)
        && entry.kind == Kind::File
        && is_archive(&entry.host);
    if !archive {
        items.push(item_for(spec, src, &entry, target)?);
        return Ok(());
    }
    let mut it = item_for(spec, src, &entry, join(&t.dest, &[]))?;
    it.kind = Kind::Dir;
    it.data = Some(Data::Archive(entry.host.clone()));
    // The destination is a directory made like COPY's parents (0755, or --chmod),
    // never given the archive file's own mode (0644 would leave it without the
    // search bit).
    it.mode = u32::MAX;
    items.push(it);
    Ok(())
}

/// `--parents`: `a/b/./c/d` → (`a/b/c/d`, 2): the first 2 components are dropped from
/// the kept path; without `/./` the whole path is kept (0).
fn split_parents(s: &str, parents: bool) -> (String, usize) {
    if !parents {
        return (s.to_string(), 0);
    }
    match s.find("/./") {
        Some(i) => (
            format!("{}/{}", &s[..i], &s[i + 3..]),
            components(&s[..i]).len(),
        ),
        None => (s.to_string(), 0),
    }
}

#[cfg(test)]
mod tests {
    use super::super::fixture::{fx, none, run, spec};

    #[test]
    fn g69_trailing_slash_means_dir() {
        let f = fx(&["f", "foo"]);
        let m = run(&f, spec(&["f"], "/sample/"), &none).unwrap();
        assert_eq!(m["sample/f"], "data of f");
        let f = fx(&["foo"]);
        let m = run(&f, spec(&["foo"], "/foo2"), &none).unwrap();
        assert_eq!(m["foo2"], "data of foo");
    }

    #[test]
    fn g70_empty_dest_is_workdir() {
        let f = fx(&["f"]);
        let mut s = spec(&["f"], "");
        s.workdir = "/app".into();
        let m = run(&f, s, &none).unwrap();
        assert_eq!(m["app/f"], "data of f");
    }

    #[test]
    fn g83_g84_parents() {
        let f = fx(&["foo1/foo2/bar"]);
        let mut s = spec(&["foo1/foo2/bar"], "/");
        s.parents = true;
        let m = run(&f, s, &none).unwrap();
        assert!(m.contains_key("foo1/foo2/bar"), "{m:?}");
        let f = fx(&["test/a/b/c/d/e"]);
        let mut s = spec(&["test/a/b/./c/d"], "/out/");
        s.parents = true;
        let m = run(&f, s, &none).unwrap();
        assert!(m.contains_key("out/c/d/e"), "{m:?}");
    }

    #[test]
    fn g86_url_for_copy() {
        let f = fx(&[]);
        let e = run(&f, spec(&["http://example.com/x"], "/"), &none).unwrap_err();
        assert_eq!(e.to_string(), "source can't be a URL for COPY");
    }

    #[test]
    fn g89_heredoc() {
        let f = fx(&[]);
        let mut s = spec(&[], "f");
        s.inline = vec![("EOF".into(), b"body\n".to_vec())];
        let m = run(&f, s, &none).unwrap();
        assert_eq!(m["f"], "body\n");
        let f = fx(&[]);
        let mut s = spec(&[], "double/");
        s.inline = vec![
            ("EOF".into(), b"1\n".to_vec()),
            ("EOF2".into(), b"2\n".to_vec()),
        ];
        let m = run(&f, s, &none).unwrap();
        assert_eq!(
            (m["double/EOF"].as_str(), m["double/EOF2"].as_str()),
            ("1\n", "2\n")
        );
    }

    #[test]
    fn h96_checksum_needs_remote() {
        let f = fx(&["a"]);
        let mut s = spec(&["a"], "/");
        s.add = true;
        s.checksum = Some("sha256:00".into());
        assert_eq!(
            run(&f, s, &none).unwrap_err().to_string(),
            "checksum requires HTTP(S) or Git sources"
        );
    }
}
