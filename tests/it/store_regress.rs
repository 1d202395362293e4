//! Store regressions, through the real binaries as root and the test users: gc makes
//! progress on a store that writers keep busy; a damaged blob or index.json is reported
//! as damage (naming it, pointing at `iimage fsck`), not as a decompression error or a
//! missing image; gc refuses a damaged store unless forced, and rm skips its gc there; a
//! layer carrying device nodes (mmdebstrap, docker export) imports, loads and runs for
//! every user, the devices skipped with one warning per layer.

use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use imago_it::{users, Env};

use crate::store_support::{fsck_clean, import_busybox, ls_names};

/// How long one `iimage gc` may take on a busy store: generous, it only has to wait for
/// the writes already running when it starts (each well under a few seconds here).
const GC_BOUND: Duration = Duration::from_secs(30);

/// A tar holding one file of `len` incompressible bytes: an import of it keeps the
/// store's writer lock for a while (compressing, hashing and unpacking it).
fn heavy_tar(len: usize) -> Vec<u8> {
    let mut data = Vec::with_capacity(len + 8);
    let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
    while data.len() < len {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        data.extend_from_slice(&x.to_le_bytes());
    }
    data.truncate(len);
    one_file_tar("heavy.bin", &data)
}

fn one_file_tar(name: &str, data: &[u8]) -> Vec<u8> {
    let mut b = tar::Builder::new(Vec::new());
    let mut h = tar::Header::new_ustar();
    h.set_mode(0o644);
    h.set_size(data.len() as u64);
    h.set_mtime(1_700_000_000);
    h.set_uid(0);
    h.set_gid(0);
    h.set_cksum();
    b.append_data(&mut h, name, data).expect("tar entry");
    b.into_inner().expect("tar")
}

fn blob_count(env: &Env) -> usize {
    std::fs::read_dir(env.root().join("blobs/sha256"))
        .expect("read blobs")
        .count()
}

fn blob_path(env: &Env, digest: &str) -> PathBuf {
    let hex = digest.strip_prefix("sha256:").expect("sha256 digest");
    env.root().join("blobs/sha256").join(hex)
}

/// `iimage inspect --raw IMAGE` → (manifest digest, config digest, first layer digest).
fn digests(env: &Env, image: &str) -> (String, String, String) {
    let out = env.cmd("iimage").args(["inspect", "--raw", image]).ok();
    let v: serde_json::Value = serde_json::from_str(&out.stdout()).expect("inspect json");
    let s = |p: &str| {
        v[0].pointer(p)
            .and_then(|x| x.as_str())
            .unwrap_or_else(|| panic!("{p} missing: {out}"))
            .to_owned()
    };
    (
        s("/Digest"),
        s("/Manifest/config/digest"),
        s("/Manifest/layers/0/digest"),
    )
}

/// Flip 64 bytes in the middle of a file, in place (owner and size unchanged).
fn damage(path: &Path) {
    let mut b = std::fs::read(path).expect("read blob");
    let mid = b.len() / 2;
    let end = (mid + 64).min(b.len());
    for x in &mut b[mid..end] {
        *x ^= 0xa5;
    }
    std::fs::write(path, b).expect("write blob");
}

/// Wait for `child` at most `bound`; kill it (and say so) when it takes longer.
fn wait_bounded(
    mut child: Child,
    bound: Duration,
) -> Result<(std::process::Output, Duration), String> {
    let start = Instant::now();
    loop {
        match child.try_wait().expect("try_wait") {
            Some(_) => {
                let out = child.wait_with_output().expect("wait");
                return Ok((out, start.elapsed()));
            }
            None if start.elapsed() > bound => {
                // Best effort: the runuser wrapper and its iimage go with the process group.
                let pgid = i32::try_from(child.id()).expect("pid");
                // SAFETY: kill(2) on a process group this test created; no memory involved.
                #[allow(unsafe_code)]
                unsafe {
                    libc::kill(-pgid, libc::SIGKILL);
                }
                let _ = child.wait();
                return Err(format!("still running after {bound:?}, killed"));
            }
            None => std::thread::sleep(Duration::from_millis(20)),
        }
    }
}

#[test]
fn gc_makes_progress_while_writers_keep_the_store_busy() {
    for user in users() {
        let env = Env::new(user);
        import_busybox(&env, "busybox");
        let heavy = env.write("heavy.tar", heavy_tar(8 << 20));
        let stop = Arc::new(AtomicBool::new(false));
        // Names each loop gave successfully; failures of any loop command.
        let named = Arc::new(Mutex::new(Vec::<String>::new()));
        let failures = Arc::new(Mutex::new(Vec::<String>::new()));
        let env = Arc::new(env);
        let mut loops = vec![];
        // Five importers (each holds the store's writer lock for its whole import, and
        // together they always hold it), one itag loop, one loop making garbage (import
        // a unique image, then rm it, whose gc also waits its turn).
        for l in 0..7 {
            let (env, stop, named, failures) =
                (env.clone(), stop.clone(), named.clone(), failures.clone());
            let heavy = heavy.clone();
            loops.push(std::thread::spawn(move || {
                let mut j = 0;
                while !stop.load(Ordering::Relaxed) {
                    let (out, name) = match l {
                        0..=4 => {
                            let n = format!("keep{l}-{j}");
                            let o = env.cmd("iimage").arg("import").arg(&heavy).arg(&n).run();
                            (o, Some(n))
                        }
                        5 => {
                            let n = format!("tag{j}");
                            (env.cmd("itag").args(["busybox", n.as_str()]).run(), Some(n))
                        }
                        _ => {
                            let tar = env.write(
                                &format!("churn{j}.tar"),
                                one_file_tar("f", format!("churn {j}").as_bytes()),
                            );
                            let o = env.cmd("iimage").arg("import").arg(&tar).arg("churn").run();
                            if o.output.status.success() {
                                (env.cmd("iimage").args(["rm", "churn"]).run(), None)
                            } else {
                                (o, None)
                            }
                        }
                    };
                    if out.output.status.success() {
                        named.lock().expect("lock").extend(name);
                    } else {
                        failures.lock().expect("lock").push(out.to_string());
                    }
                    j += 1;
                }
            }));
        }
        // Let every loop get going before the first gc.
        std::thread::sleep(Duration::from_secs(3));
        let mut results = vec![];
        for _ in 0..3 {
            let mut c = env.cmd("iimage").arg("gc");
            let child = c
                .command()
                .process_group(0)
                .stdout(Stdio::piped())
                .stderr(Stdio::piped())
                .spawn()
                .expect("spawn gc");
            results.push(wait_bounded(child, GC_BOUND));
        }
        stop.store(true, Ordering::Relaxed);
        for t in loops {
            t.join().expect("loop thread");
        }
        let failures = failures.lock().expect("lock").clone();
        for (i, r) in results.iter().enumerate() {
            match r {
                Ok((out, took)) => {
                    assert!(
                        out.status.success(),
                        "[{}] gc #{i} failed after {took:?}: {}",
                        user.name(),
                        String::from_utf8_lossy(&out.stderr)
                    );
                    eprintln!("[{}] gc #{i} took {took:?}", user.name());
                }
                Err(e) => panic!("[{}] gc #{i} on a busy store: {e}", user.name()),
            }
        }
        assert!(
            failures.is_empty(),
            "[{}] {} loop commands failed, the first: {:#?}",
            user.name(),
            failures.len(),
            &failures[..failures.len().min(3)]
        );
        // Nothing lost: every name a loop gave is there, and the store is whole.
        let names: Vec<String> = ls_names(&env).into_values().flatten().collect();
        let named = named.lock().expect("lock").clone();
        assert!(
            named.len() >= 8,
            "[{}] loops made too little progress: {named:?}",
            user.name()
        );
        for n in &named {
            assert!(
                names.contains(n),
                "[{}] name {n} lost: {names:?}",
                user.name()
            );
        }
        env.cmd("iimage").arg("gc").ok();
        fsck_clean(&env);
    }
}

#[test]
fn a_damaged_layer_blob_is_named_with_a_pointer_to_fsck() {
    for user in users() {
        let env = Env::new(user);
        import_busybox(&env, "busybox");
        let (_, _, layer) = digests(&env, "busybox");
        // Drop the unpacked layer so that export must unpack the blob again.
        env.cmd("iimage").args(["gc", "--layers"]).ok();
        damage(&blob_path(&env, &layer));
        let out = env
            .cmd("iimage")
            .args(["export", "-o"])
            .arg(env.path("x.tar"))
            .arg("busybox")
            .run();
        let err = out.stderr();
        assert!(
            !out.output.status.success()
                && err.contains(&layer)
                && err.contains("damaged")
                && err.contains("iimage fsck")
                && !err.contains("deflate"),
            "[{}] {out}",
            user.name()
        );
        let fsck = env.cmd("iimage").arg("fsck").run();
        assert!(
            fsck.code() == Some(125) && fsck.stdout().contains(&layer),
            "{fsck}"
        );
    }
}

/// An image whose config blob is gone, named at irun's start: damage, said once, with
/// one hint. The look-up by name and the full look-up it falls back to each warned
/// about the image; the missing blob's hint repeated the damaged image's.
#[test]
fn a_damaged_image_named_at_start_is_warned_about_once() {
    for user in users() {
        let env = Env::new(user);
        import_busybox(&env, "busybox");
        let (_, config, _) = digests(&env, "busybox");
        std::fs::remove_file(blob_path(&env, &config)).expect("remove the config blob");
        let out = env.cmd("irun").args(["--rm", "busybox", "true"]).run();
        let err = out.stderr();
        assert!(
            !out.output.status.success() && err.contains("damaged") && err.contains(&config),
            "[{}] {out}",
            user.name()
        );
        assert_eq!(
            err.matches("skipping image").count(),
            1,
            "[{}] {out}",
            user.name()
        );
        assert_eq!(err.matches("hint:").count(), 1, "[{}] {out}", user.name());
    }
}

#[test]
fn a_damaged_index_is_reported_as_damage_not_as_a_missing_image() {
    for user in users() {
        let env = Env::new(user);
        import_busybox(&env, "busybox");
        let index = env.root().join("index.json");
        let whole = std::fs::read(&index).expect("read index");
        std::fs::write(&index, &whole[..whole.len() / 2]).expect("truncate index");
        for c in [
            env.cmd("iimage").args(["inspect", "busybox"]),
            env.cmd("itag").args(["busybox", "other"]),
            env.cmd("iimage").arg("gc"),
        ] {
            let out = c.run();
            let err = out.stderr();
            assert!(
                !out.output.status.success()
                    && err.contains("index.json")
                    && err.contains("damaged")
                    && err.contains("iimage fsck")
                    && !err.contains("not found"),
                "[{}] {out}",
                user.name()
            );
        }
        // A store whose index.json is gone while blobs remain is damaged too: it is not
        // silently re-created empty (which would let gc delete every blob).
        std::fs::remove_file(&index).expect("remove index");
        let before = blob_count(&env);
        assert!(before >= 3);
        env.cmd("iimage").arg("gc").run().fails_with("damaged");
        assert_eq!(
            blob_count(&env),
            before,
            "[{}] gc deleted blobs",
            user.name()
        );
        env.cmd("iimage")
            .args(["ls"])
            .run()
            .fails_with("iimage fsck");
    }
}

#[test]
fn gc_refuses_a_damaged_store_unless_forced_and_rm_skips_its_gc() {
    for user in users() {
        let env = Env::new(user);
        import_busybox(&env, "busybox");
        let small = env.write("small.tar", one_file_tar("f", b"small"));
        env.cmd("iimage")
            .arg("import")
            .arg(&small)
            .arg("small")
            .ok();
        let (manifest, config, layer) = digests(&env, "small");
        damage(&blob_path(&env, &manifest));
        let before = blob_count(&env);
        env.cmd("iimage").arg("gc").run().fails_with("iimage fsck");
        assert_eq!(
            blob_count(&env),
            before,
            "[{}] gc on a damaged store deleted blobs",
            user.name()
        );
        // rm still removes the name, skips the gc with a warning, and exits 0.
        let rm = env.cmd("iimage").args(["rm", "busybox"]).ok();
        assert!(
            rm.stdout().contains("Untagged: busybox") && rm.stderr().contains("warning"),
            "[{}] {rm}",
            user.name()
        );
        assert_eq!(
            blob_count(&env),
            before,
            "[{}] rm's gc deleted blobs",
            user.name()
        );
        let prune = env.cmd("iimage").arg("prune").ok();
        assert!(
            prune.stderr().contains("warning"),
            "[{}] {prune}",
            user.name()
        );
        assert!(blob_path(&env, &config).exists() && blob_path(&env, &layer).exists());
        // Forced, gc collects what the readable entries do not reach.
        env.cmd("iimage").args(["gc", "--force"]).ok();
        assert!(!blob_path(&env, &config).exists() && !blob_path(&env, &layer).exists());
        // The damaged image can be removed by name; then gc runs unforced, and the store
        // is clean again.
        env.cmd("iimage").args(["rm", "small"]).ok();
        env.cmd("iimage").arg("gc").ok();
        assert!(!blob_path(&env, &manifest).exists());
        fsck_clean(&env);
    }
}

/// The busybox rootfs plus what `mmdebstrap` and `docker export` tars carry: a file, a
/// directory and `/dev` device nodes (a console and a disk).
fn tar_with_device_nodes(env: &Env) -> PathBuf {
    let base = std::fs::File::open(env.busybox_tar()).expect("open busybox tar");
    let mut ar = tar::Archive::new(base);
    let mut b = tar::Builder::new(Vec::new());
    for e in ar.entries().expect("busybox tar entries") {
        let mut e = e.expect("busybox tar entry");
        let path = e.path().expect("entry path").into_owned();
        let mut h = e.header().clone();
        if h.entry_type().is_symlink() {
            let target = e.link_name().expect("link").expect("target").into_owned();
            b.append_link(&mut h, &path, target).expect("tar link");
        } else {
            b.append_data(&mut h, &path, &mut e).expect("tar entry");
        }
    }
    let header = |kind: tar::EntryType, mode: u32, size: u64| {
        let mut h = tar::Header::new_gnu();
        h.set_entry_type(kind);
        h.set_mode(mode);
        h.set_size(size);
        h.set_uid(0);
        h.set_gid(0);
        h.set_mtime(1_700_000_000);
        h
    };
    let mut h = header(tar::EntryType::Directory, 0o755, 0);
    b.append_data(&mut h, "./data/", std::io::empty())
        .expect("dir");
    let greeting = b"layer with device nodes\n";
    let mut h = header(tar::EntryType::Regular, 0o644, greeting.len() as u64);
    b.append_data(&mut h, "./data/greeting", &greeting[..])
        .expect("file");
    for (name, kind, major, minor) in [
        ("./dev/console", tar::EntryType::Char, 5, 1),
        ("./dev/sda", tar::EntryType::Block, 8, 0),
    ] {
        let mut h = header(kind, 0o600, 0);
        h.set_device_major(major).expect("major");
        h.set_device_minor(minor).expect("minor");
        b.append_data(&mut h, name, std::io::empty())
            .expect("device");
    }
    env.write("devices.tar", b.into_inner().expect("tar"))
}

/// The lines of `stderr` that report skipped device nodes.
fn device_warnings(stderr: &str) -> Vec<&str> {
    stderr
        .lines()
        .filter(|l| l.contains("device node"))
        .collect()
}

#[test]
fn device_nodes_in_a_layer_are_skipped_with_one_warning_per_layer() {
    for user in users() {
        let env = Env::new(user);
        let tar = tar_with_device_nodes(&env);
        let out = env
            .cmd("iimage")
            .args(["import", "--change", "CMD [\"sh\"]"])
            .arg(&tar)
            .arg("devs")
            .ok();
        let stderr = out.stderr();
        let warned = device_warnings(&stderr);
        assert!(
            warned.len() == 1
                && warned[0].contains("skipped 2 device nodes in layer sha256:")
                && warned[0].to_lowercase().contains("warn"),
            "[{}] want one warning naming 2 skipped device nodes: {out}",
            user.name()
        );
        let cat = env
            .cmd("irun")
            .args(["--rm", "devs", "cat", "/data/greeting"])
            .ok();
        assert_eq!(cat.stdout(), "layer with device nodes\n", "{cat}");
        assert!(device_warnings(&cat.stderr()).is_empty(), "{cat}");
        // /dev is the runtime's: its devices, not the layer's disk.
        let ls = env.cmd("irun").args(["--rm", "devs", "ls", "/dev"]).ok();
        let names: Vec<String> = ls.stdout().split_whitespace().map(str::to_owned).collect();
        for want in ["null", "zero", "urandom", "tty"] {
            assert!(names.iter().any(|n| n == want), "[{}] {ls}", user.name());
        }
        assert!(!names.iter().any(|n| n == "sda"), "[{}] {ls}", user.name());

        // The blob keeps the tar as it was: loaded into another store, the layer is
        // unpacked by the first run, which warns once; the next run says nothing.
        let archive = env.path("devs-archive.tar");
        env.cmd("iimage")
            .args(["save", "-o"])
            .arg(&archive)
            .arg("devs")
            .ok();
        let other = env.path("store2");
        env.cmd("iimage")
            .args(["load", "-i"])
            .arg(&archive)
            .env("IMAGO_ROOT", &other)
            .ok();
        for warnings in [1, 0] {
            let run = env
                .cmd("irun")
                .args(["--rm", "devs", "cat", "/data/greeting"])
                .env("IMAGO_ROOT", &other)
                .ok();
            assert_eq!(run.stdout(), "layer with device nodes\n", "{run}");
            assert_eq!(
                device_warnings(&run.stderr()).len(),
                warnings,
                "[{}] {run}",
                user.name()
            );
        }
        fsck_clean(&env);
    }
}
