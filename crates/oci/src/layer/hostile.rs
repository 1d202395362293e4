//! A corpus of hostile layer tars (feature `test-corpus`), for our unit tests and the
//! binary-level tests of other crates. Each case must be refused by
//! [`super::unpack`] with [`corpus_options`] (or any options with a size cap of at most
//! [`HostileTar::max_cap`]), with an error containing `expect`, and with no write outside
//! the destination.
//!
//! The tars are written byte by byte here (headers included), because well-behaved tar
//! writers refuse to produce most of them.

use tar::{EntryType, Header};

use super::UnpackOptions;

/// One hostile tar.
#[derive(Debug, Clone)]
pub struct HostileTar {
    pub name: &'static str,
    /// The uncompressed tar.
    pub tar: Vec<u8>,
    /// A substring of the error's Display (its whole chain is not needed).
    pub expect: &'static str,
    /// For size-cap cases: the case is refused only under a cap at most this large.
    pub max_cap: Option<u64>,
}

/// The options the expectations assume: defaults plus a 1 MiB size cap.
pub fn corpus_options() -> UnpackOptions {
    UnpackOptions {
        max_bytes: Some(1 << 20),
        ..UnpackOptions::default()
    }
}

/// A tar under construction.
#[derive(Default)]
struct T {
    out: Vec<u8>,
}

impl T {
    fn header(kind: EntryType, name: &[u8], size: u64, link: &[u8]) -> Header {
        let mut h = Header::new_ustar();
        let n = name.len().min(100);
        h.as_old_mut().name[..n].copy_from_slice(&name[..n]);
        let l = link.len().min(100);
        h.as_old_mut().linkname[..l].copy_from_slice(&link[..l]);
        h.set_entry_type(kind);
        h.set_mode(if kind == EntryType::Directory {
            0o755
        } else {
            0o644
        });
        h.set_size(size);
        h.set_mtime(1_700_000_000);
        h.set_uid(0);
        h.set_gid(0);
        h
    }

    fn push(mut self, mut h: Header, data: &[u8]) -> Self {
        h.set_cksum();
        self.out.extend_from_slice(h.as_bytes());
        self.out.extend_from_slice(data);
        let rem = data.len() % 512;
        if rem != 0 {
            self.out.extend(std::iter::repeat_n(0u8, 512 - rem));
        }
        self
    }

    fn file(self, name: &str, data: &[u8]) -> Self {
        let h = Self::header(EntryType::Regular, name.as_bytes(), data.len() as u64, b"");
        self.push(h, data)
    }

    fn dir(self, name: &str) -> Self {
        let h = Self::header(EntryType::Directory, name.as_bytes(), 0, b"");
        self.push(h, b"")
    }

    fn symlink(self, name: &str, target: &str) -> Self {
        let h = Self::header(EntryType::Symlink, name.as_bytes(), 0, target.as_bytes());
        self.push(h, b"")
    }

    fn hardlink(self, name: &str, target: &str) -> Self {
        let h = Self::header(EntryType::Link, name.as_bytes(), 0, target.as_bytes());
        self.push(h, b"")
    }

    fn device(self, name: &str, kind: EntryType, major: u32, minor: u32) -> Self {
        let mut h = Self::header(kind, name.as_bytes(), 0, b"");
        let _ignored = h.set_device_major(major);
        let _ignored2 = h.set_device_minor(minor);
        self.push(h, b"")
    }

    /// A PAX `path` record followed by a regular file with a placeholder name.
    fn pax_file(self, path: &[u8], data: &[u8]) -> Self {
        self.pax_then_file(&[("path", path)], "placeholder", data)
    }

    /// PAX records, then a regular file `name`.
    fn pax_then_file(self, records: &[(&str, &[u8])], name: &str, data: &[u8]) -> Self {
        let mut rec = Vec::new();
        for (k, v) in records {
            let body = k.len() + v.len() + 3;
            let mut len = body + 1;
            while len != body + len.to_string().len() {
                len = body + len.to_string().len();
            }
            rec.extend_from_slice(format!("{len} {k}=").as_bytes());
            rec.extend_from_slice(v);
            rec.push(b'\n');
        }
        let h = Self::header(EntryType::XHeader, b"PaxHeaders.0/x", rec.len() as u64, b"");
        self.push(h, &rec).file(name, data)
    }

    fn end(mut self) -> Vec<u8> {
        self.out.extend_from_slice(&[0u8; 1024]);
        self.out
    }

    /// Data declared `size` bytes long but only `data` present, then EOF.
    fn truncated(mut self, name: &str, size: u64, data: &[u8]) -> Vec<u8> {
        let mut h = Self::header(EntryType::Regular, name.as_bytes(), size, b"");
        h.set_cksum();
        self.out.extend_from_slice(h.as_bytes());
        self.out.extend_from_slice(data);
        self.out
    }

    /// A GNU sparse file of apparent size `real` holding one byte at its end.
    fn sparse(self, name: &str, real: u64) -> Self {
        let mut h = Header::new_gnu();
        h.as_old_mut().name[..name.len()].copy_from_slice(name.as_bytes());
        h.set_entry_type(EntryType::GNUSparse);
        h.set_mode(0o644);
        h.set_size(1);
        h.set_mtime(1_700_000_000);
        h.set_uid(0);
        h.set_gid(0);
        if let Some(g) = h.as_gnu_mut() {
            g.set_real_size(real);
            g.sparse[0].set_offset(real - 1);
            g.sparse[0].set_length(1);
        }
        self.push(h, b"x")
    }
}

fn t() -> T {
    T::default()
}

/// The corpus (32 cases).
pub fn corpus() -> Vec<HostileTar> {
    let c = |name, tar, expect| HostileTar {
        name,
        tar,
        expect,
        max_cap: None,
    };
    const TRAVERSAL: &str = "`..` would leave the layer root";
    const CROSSES: &str = "crosses a symlink";
    const HARDLINK: &str = "bad hardlink target";
    vec![
        c("dotdot-file", t().file("../evil", b"x").end(), TRAVERSAL),
        c(
            "deep-dotdot",
            t().dir("a/").file("a/../../evil", b"x").end(),
            TRAVERSAL,
        ),
        c("dotdot-dir", t().dir("../evil-dir/").end(), TRAVERSAL),
        c(
            "absolute-path",
            t().file("/evil-abs", b"x").end(),
            "absolute paths are not allowed",
        ),
        c(
            "symlink-root-then-write",
            t().symlink("l", "/").file("l/evil", b"x").end(),
            CROSSES,
        ),
        c(
            "symlink-up-then-write",
            t().symlink("up", "../..").file("up/evil", b"x").end(),
            CROSSES,
        ),
        c(
            "symlink-up-then-mkdir",
            t().symlink("up", "..").dir("up/evil-dir/").end(),
            CROSSES,
        ),
        c(
            "hardlink-etc-passwd",
            t().hardlink("hl", "/etc/passwd").end(),
            HARDLINK,
        ),
        c(
            "hardlink-dotdot",
            t().hardlink("hl", "../outside").end(),
            HARDLINK,
        ),
        c(
            "hardlink-through-symlink",
            t().symlink("l", "/etc").hardlink("hl", "l/passwd").end(),
            HARDLINK,
        ),
        c(
            "hardlink-to-symlink",
            t().symlink("s", "/etc/passwd").hardlink("hl", "s").end(),
            "not a regular file",
        ),
        c(
            "hardlink-missing",
            t().hardlink("hl", "nothere").end(),
            "not extracted before",
        ),
        // Refused by their path, also where devices are skipped (the store does that).
        c(
            "char-device-dotdot",
            t().device("../evil-null", EntryType::Char, 1, 3).end(),
            TRAVERSAL,
        ),
        c(
            "block-device-through-symlink",
            t().symlink("l", "/")
                .device("l/evil-sda", EntryType::Block, 8, 0)
                .end(),
            CROSSES,
        ),
        c(
            "symlink-loop-then-write",
            t().symlink("loop1", "loop2")
                .symlink("loop2", "loop1")
                .file("loop1/evil", b"x")
                .end(),
            CROSSES,
        ),
        c(
            "symlink-chain-then-write",
            t().symlink("a", "b")
                .symlink("b", "/")
                .file("a/evil", b"x")
                .end(),
            CROSSES,
        ),
        HostileTar {
            name: "sparse-10GiB-bomb",
            tar: t().sparse("bomb", 10 << 30).end(),
            expect: "exceeds the size cap",
            max_cap: Some((10 << 30) - 1),
        },
        HostileTar {
            name: "declared-2GiB-over-cap",
            tar: t().truncated("big", 2 << 30, b"short"),
            expect: "exceeds the size cap",
            max_cap: Some((2 << 30) - 1),
        },
        c(
            "declared-size-short-data",
            t().truncated("short", 512 * 1024, b"only this"),
            "truncated",
        ),
        c(
            "whiteout-dotdot-escape",
            t().file("../.wh.evil", b"").end(),
            TRAVERSAL,
        ),
        c(
            "whiteout-of-dotdot",
            t().dir("a/").file("a/.wh...", b"").end(),
            "`..` name where a file name is needed",
        ),
        c(
            "whiteout-through-symlink",
            t().symlink("l", "/tmp").file("l/.wh.evil", b"").end(),
            CROSSES,
        ),
        c(
            "opaque-through-symlink",
            t().symlink("l", "/").file("l/.wh..wh..opq", b"").end(),
            CROSSES,
        ),
        c(
            "dir-replaced-by-symlink-then-write",
            t().dir("d/")
                .file("d/ok", b"ok")
                .symlink("d", "/")
                .file("d/evil", b"x")
                .end(),
            CROSSES,
        ),
        c(
            "file-as-parent",
            t().file("f", b"x").file("f/evil", b"x").end(),
            "not a directory",
        ),
        c(
            "nul-in-name",
            t().pax_file(b"evil\0name", b"x").end(),
            "NUL byte",
        ),
        c(
            "very-long-path",
            t().pax_file(&b"a/".repeat(2100), b"x").end(),
            "longer than 4096",
        ),
        c(
            "pax-header-bomb",
            t().push(
                T::header(EntryType::XHeader, b"PaxHeaders.0/bomb", 1 << 30, b""),
                b"10 path=x\n",
            )
            .end(),
            "exceeds the limit",
        ),
        c(
            "longname-bomb",
            t().push(
                T::header(EntryType::GNULongName, b"././@LongLink", 8 << 30, b""),
                b"aaaa",
            )
            .end(),
            "exceeds the limit",
        ),
        c(
            "pax-sparse-map",
            t().pax_then_file(
                &[
                    ("GNU.sparse.major", b"1"),
                    ("GNU.sparse.minor", b"0"),
                    ("GNU.sparse.realsize", b"4096"),
                ],
                "sparse",
                b"1\n0\n4096\nx",
            )
            .end(),
            "PAX sparse files",
        ),
        c(
            "root-replaced-by-symlink",
            t().symlink("./", "/").end(),
            "replace the layer root",
        ),
        c(
            "unsupported-type",
            t().push(T::header(EntryType::new(b'V'), b"volume", 0, b""), b"")
                .end(),
            "unsupported tar entry type",
        ),
    ]
}
