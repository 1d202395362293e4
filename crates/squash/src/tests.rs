//! Round trips through the writer and reader, cross-checked with squashfs-tools where
//! installed, and the reader fed damaged archives.

use std::io::Write;

use crate::{read_small, write_tar, Archive, InodeKind, WriteOptions};

fn header(path: &str, ty: tar::EntryType, mode: u32, size: u64) -> tar::Header {
    let mut h = tar::Header::new_gnu();
    h.set_path(path).unwrap();
    h.set_entry_type(ty);
    h.set_mode(mode);
    h.set_uid(1000);
    h.set_gid(100);
    h.set_size(size);
    h.set_mtime(1_700_000_000);
    h.set_cksum();
    h
}

/// A root with dirs, files of several sizes (one with a hole, one of several blocks),
/// a symlink, a hardlink, a fifo, and a whiteout of an earlier entry.
fn sample_tar() -> Vec<u8> {
    let mut b = tar::Builder::new(Vec::new());
    let mut add = |path: &str, ty, mode, data: &[u8]| {
        let h = header(path, ty, mode, data.len() as u64);
        b.append(&h, data).unwrap();
    };
    use tar::EntryType as T;
    add("etc/", T::Directory, 0o755, b"");
    add(
        "etc/passwd",
        T::Regular,
        0o644,
        b"root:x:0:0::/root:/bin/sh\napp:x:1000:100::/home/app:/bin/sh\n",
    );
    add("etc/group", T::Regular, 0o644, b"root:x:0:\nusers:x:100:\n");
    add("bin/", T::Directory, 0o755, b"");
    let mut big = vec![0u8; 300_000];
    for (i, b) in big.iter_mut().enumerate().skip(140_000) {
        *b = (i % 251) as u8;
    }
    add("bin/big", T::Regular, 0o755, &big);
    add("bin/empty", T::Regular, 0o600, b"");
    add("gone", T::Regular, 0o644, b"x");
    add(".wh.gone", T::Regular, 0o644, b"");
    let mut l = header("bin/sh", T::Symlink, 0o777, 0);
    b.append_link(&mut l, "bin/sh", "/bin/big").unwrap();
    let mut h = header("bin/big2", T::Link, 0o755, 0);
    b.append_link(&mut h, "bin/big2", "bin/big").unwrap();
    let f = header("run/fifo", T::Fifo, 0o600, 0);
    b.append(&f, &b""[..]).unwrap();
    b.into_inner().unwrap()
}

fn sample(dir: &std::path::Path) -> std::path::PathBuf {
    let out = dir.join("img.sqsh");
    write_tar(
        &sample_tar()[..],
        br#"{"config":{"Cmd":["sh"]}}"#,
        &out,
        &WriteOptions::default(),
    )
    .unwrap();
    out
}

#[test]
fn what_is_written_reads_back() {
    let d = tempfile::tempdir().unwrap();
    let a = Archive::open(&sample(d.path())).unwrap();
    assert_eq!(a.config().unwrap(), br#"{"config":{"Cmd":["sh"]}}"#);
    let names: Vec<_> = a
        .dir(a.root())
        .unwrap()
        .iter()
        .map(|e| e.name.clone())
        .collect();
    assert_eq!(
        names,
        vec![b"bin".to_vec(), b"etc".to_vec(), b"run".to_vec()]
    );
    let bin = a.lookup(a.root(), b"bin").unwrap().unwrap().inode;
    let big = a.lookup(bin, b"big").unwrap().unwrap();
    let big2 = a.lookup(bin, b"big2").unwrap().unwrap();
    assert_eq!(big.inode, big2.inode, "a hardlink is the same inode");
    let ino = a.inode(big.inode).unwrap();
    assert!(matches!(
        ino.kind,
        InodeKind::File {
            size: 300_000,
            nlink: 2,
            ..
        }
    ));
    assert_eq!((ino.uid, ino.gid, ino.perm), (1000, 100, 0o755));
    let data = a.read(big.inode, 0, 400_000).unwrap();
    assert_eq!(data.len(), 300_000);
    assert!(data[..140_000].iter().all(|b| *b == 0));
    assert_eq!(data[200_000], (200_000 % 251) as u8);
    let across = a.read(big.inode, 131_070, 4).unwrap();
    assert_eq!(across, data[131_070..131_074], "a read across two blocks");
    assert_eq!(a.read(big.inode, 299_999, 10).unwrap(), data[299_999..]);
    assert!(a.read(big.inode, 300_000, 10).unwrap().is_empty());
    let sh = a.lookup(bin, b"sh").unwrap().unwrap();
    assert_eq!(
        a.inode(sh.inode).unwrap().kind,
        InodeKind::Symlink(b"/bin/big".to_vec())
    );
    let passwd = read_small(&a, "/etc/passwd", 1 << 20).unwrap().unwrap();
    assert!(passwd.starts_with(b"root:x:0:0"));
    assert_eq!(
        read_small(&a, "/bin/sh", 1 << 20).unwrap(),
        None,
        "no symlink is followed"
    );
    assert_eq!(
        read_small(&a, "/gone", 1 << 20).unwrap(),
        None,
        "the whiteout hid it"
    );
}

#[test]
fn unsquashfs_lists_the_same_files() {
    if std::process::Command::new("unsquashfs")
        .arg("-help")
        .output()
        .is_err()
    {
        // squashfs-tools is installed by scripts/setup-host.sh; without it only the
        // round trip above checks the format.
        return;
    }
    let d = tempfile::tempdir().unwrap();
    let img = sample(d.path());
    let out = std::process::Command::new("unsquashfs")
        .args(["-n", "-d", ""])
        .arg("-lln")
        .arg(&img)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8_lossy(&out.stdout);
    for want in [
        "/bin/big",
        "/bin/big2",
        "/bin/empty",
        "/bin/sh -> /bin/big",
        "/etc/passwd",
        "/run/fifo",
    ] {
        assert!(text.contains(want), "{want} missing in:\n{text}");
    }
    assert!(!text.contains("gone"), "{text}");
    assert!(
        text.contains("-rwxr-xr-x 1000/100") && text.contains("300000"),
        "{text}"
    );
    // And unsquashfs extracts the same bytes.
    let x = d.path().join("x");
    let st = std::process::Command::new("unsquashfs")
        .args(["-n", "-no-xattrs", "-d"])
        .arg(&x)
        .arg(&img)
        .output()
        .unwrap();
    assert!(
        st.status.success(),
        "{}",
        String::from_utf8_lossy(&st.stderr)
    );
    let a = Archive::open(&img).unwrap();
    let bin = a.lookup(a.root(), b"bin").unwrap().unwrap().inode;
    let big = a.lookup(bin, b"big").unwrap().unwrap().inode;
    assert_eq!(
        std::fs::read(x.join("bin/big")).unwrap(),
        a.read(big, 0, 1 << 20).unwrap()
    );
}

#[test]
fn mksquashfs_archives_read_too() {
    let d = tempfile::tempdir().unwrap();
    let src = d.path().join("src");
    std::fs::create_dir_all(src.join("a/b")).unwrap();
    std::fs::write(src.join("a/b/small"), b"tail in a fragment").unwrap();
    let big: Vec<u8> = (0..200_000u32).map(|i| (i % 7) as u8).collect();
    std::fs::write(src.join("a/big"), &big).unwrap();
    let img = d.path().join("m.sqsh");
    for comp in ["gzip", "zstd"] {
        // The previous round's file, if any: mksquashfs would append to it.
        let _ = std::fs::remove_file(&img);
        let Ok(st) = std::process::Command::new("mksquashfs")
            .arg(&src)
            .arg(&img)
            .args(["-comp", comp, "-quiet", "-no-progress"])
            .output()
        else {
            // Without squashfs-tools (see above) there is nothing to cross-check.
            return;
        };
        assert!(
            st.status.success(),
            "{}",
            String::from_utf8_lossy(&st.stderr)
        );
        let a = Archive::open(&img).unwrap();
        assert_eq!(a.config(), None);
        let ad = a.lookup(a.root(), b"a").unwrap().unwrap().inode;
        let b = a.lookup(ad, b"b").unwrap().unwrap().inode;
        let small = a.lookup(b, b"small").unwrap().unwrap().inode;
        assert_eq!(a.read(small, 0, 100).unwrap(), b"tail in a fragment");
        let bi = a.lookup(ad, b"big").unwrap().unwrap().inode;
        assert_eq!(a.read(bi, 0, 1 << 20).unwrap(), big);
        assert_eq!(a.read(bi, 199_990, 100).unwrap(), &big[199_990..]);
    }
}

/// Every prefix, and copies with bytes flipped, must open or fail cleanly, and every
/// file of one that opens must read or fail cleanly: no panic, no hang.
#[test]
fn damaged_archives_fail_cleanly() {
    let d = tempfile::tempdir().unwrap();
    let good = std::fs::read(sample(d.path())).unwrap();
    let p = d.path().join("bad.sqsh");
    let walk = |a: &Archive| {
        let mut stack = vec![(a.root(), 0)];
        let mut seen = 0;
        while let Some((r, depth)) = stack.pop() {
            seen += 1;
            if seen > 1000 || depth > 20 {
                break;
            }
            let Ok(entries) = a.dir(r) else { continue };
            for e in entries.iter() {
                if let Ok(i) = a.inode(e.inode) {
                    match i.kind {
                        InodeKind::Dir { .. } => stack.push((e.inode, depth + 1)),
                        _ => drop(a.read(e.inode, 0, 1 << 20)),
                    }
                }
            }
        }
    };
    let mut cases: Vec<Vec<u8>> = Vec::new();
    for cut in [
        0,
        10,
        95,
        96,
        200,
        good.len() / 2,
        good.len() - 4096,
        good.len() - 1,
    ] {
        cases.push(good[..cut.min(good.len())].to_vec());
    }
    let mut seed = 0x2545_f491_u64;
    for _ in 0..300 {
        let mut b = good.clone();
        for _ in 0..4 {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            let at = (seed as usize) % b.len();
            b[at] ^= (seed >> 32) as u8 | 1;
        }
        cases.push(b);
    }
    for c in cases {
        std::fs::File::create(&p).unwrap().write_all(&c).unwrap();
        if let Ok(a) = Archive::open(&p) {
            walk(&a);
        }
    }
}

#[test]
fn a_failed_write_leaves_no_file() {
    let d = tempfile::tempdir().unwrap();
    let out = d.path().join("x.sqsh");
    let mut tar = sample_tar();
    tar.truncate(1500);
    tar[600] ^= 0xff;
    let opts = WriteOptions {
        max_entries: 3,
        ..WriteOptions::default()
    };
    assert!(write_tar(&sample_tar()[..], b"{}", &out, &opts).is_err());
    assert!(write_tar(&tar[..], b"{}", &out, &WriteOptions::default()).is_err());
    let left: Vec<_> = std::fs::read_dir(d.path()).unwrap().collect();
    assert!(left.is_empty(), "{left:?}");
    let mut evil = tar::Builder::new(Vec::new());
    let mut h = tar::Header::new_gnu();
    h.as_gnu_mut().unwrap().name[..9].copy_from_slice(b"../escape");
    h.set_size(0);
    h.set_cksum();
    evil.append(&h, &b""[..]).unwrap();
    let e = write_tar(
        &evil.into_inner().unwrap()[..],
        b"{}",
        &out,
        &WriteOptions::default(),
    );
    assert!(e.unwrap_err().to_string().contains("unsafe"));
    assert!(!out.exists());
}

#[test]
fn write_from_commits_only_when_the_producer_succeeded() {
    let d = tempfile::tempdir().unwrap();
    let out = d.path().join("p.sqsh");
    let tar = sample_tar();
    let good = |w: &mut dyn Write| -> Result<(), crate::SourceError> {
        w.write_all(&tar)?;
        Ok(())
    };
    crate::write_from(good, b"{}", &out, &WriteOptions::default()).unwrap();
    assert!(Archive::open(&out).unwrap().config() == Some(&b"{}"[..]));
    let before = std::fs::read(&out).unwrap();
    // The whole tar goes through, then the producer fails: nothing is replaced.
    let failing = |w: &mut dyn Write| -> Result<(), crate::SourceError> {
        w.write_all(&tar)?;
        Err("the store failed".into())
    };
    let e = crate::write_from(failing, b"{}", &out, &WriteOptions::default()).unwrap_err();
    assert!(matches!(e, crate::WriteError::Source(_)), "{e}");
    assert_eq!(std::fs::read(&out).unwrap(), before);
    assert_eq!(
        std::fs::read_dir(d.path()).unwrap().count(),
        1,
        "no temp file left"
    );
}
