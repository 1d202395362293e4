//! Helpers for the ibuild tests: a store with the busybox base (imported with the real
//! `iimage import`), a context dir written as the user, and readers for what a build
//! wrote (config JSON, the entries of a layer tar) through the store library.

use std::io::Read;
use std::path::PathBuf;
use std::sync::OnceLock;

use imago_it::{Env, Out, User};
use imago_store::Store;

/// A user's environment with `busybox` (the offline busybox rootfs, `CMD ["sh"]`) in its
/// store.
pub fn env_with_busybox(user: User) -> Env {
    let env = Env::new(user);
    // The rootfs script takes seconds; make the tar once per test process and copy it.
    let tar = env.path("busybox-rootfs.tar");
    std::fs::copy(shared_busybox_tar(), &tar).expect("copy busybox tar");
    env.give(&tar);
    env.cmd("iimage")
        .args(["import", "--change", "CMD [\"sh\"]"])
        .arg(&tar)
        .arg("busybox")
        .ok();
    env
}

fn shared_busybox_tar() -> &'static PathBuf {
    static TAR: OnceLock<PathBuf> = OnceLock::new();
    TAR.get_or_init(|| {
        let dir =
            imago_it::scratch_base().join(format!("imago-ibuild-base-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("mkdir");
        let out = dir.join("busybox-rootfs.tar");
        let st = std::process::Command::new(
            imago_it::repo_root().join("scripts/make-busybox-rootfs.sh"),
        )
        .arg(&out)
        .status()
        .expect("run make-busybox-rootfs.sh");
        assert!(st.success(), "make-busybox-rootfs.sh failed");
        out
    })
}

/// Write a build context: (relative path, content) pairs, owned by the user.
pub fn context(env: &Env, dir: &str, files: &[(&str, &str)]) -> PathBuf {
    let d = env.mkdir(dir);
    for (p, c) in files {
        env.write(&format!("{dir}/{p}"), c);
    }
    // Parent dirs made by write() belong to root: give them to the user too.
    give_tree(env, &d);
    d
}

fn give_tree(env: &Env, p: &std::path::Path) {
    env.give(p);
    if p.is_dir() {
        for e in std::fs::read_dir(p).expect("read_dir").flatten() {
            give_tree(env, &e.path());
        }
    }
}

/// `ibuild` in `dir` with extra args; the context is `.`.
pub fn ibuild(env: &Env, dir: &str, args: &[&str]) -> Out {
    let mut c = env
        .cmd("ibuild")
        .args(["--root"])
        .arg(env.root())
        .args(args)
        .arg(env.path(dir));
    c.command().current_dir(env.path(dir));
    c.run()
}

/// The image config of `name` as JSON.
pub fn config(env: &Env, name: &str) -> serde_json::Value {
    let store = Store::open(env.root()).expect("open store");
    let img = store
        .resolve(name)
        .unwrap_or_else(|e| panic!("resolve {name}: {e}"));
    serde_json::from_slice(&img.config_bytes).expect("config json")
}

/// The image id (config digest) of `name`.
pub fn image_id(env: &Env, name: &str) -> String {
    let store = Store::open(env.root()).expect("open store");
    store.resolve(name).expect("resolve").id().to_string()
}

/// A tar entry: path, uid, gid, mode, kind ('d', '-', 'l', ...), content.
#[derive(Debug, Clone)]
pub struct Entry {
    pub path: String,
    pub uid: u64,
    pub gid: u64,
    pub mode: u32,
    pub kind: char,
    pub data: Vec<u8>,
}

/// The entries of every layer of `name`, bottom first.
pub fn layers(env: &Env, name: &str) -> Vec<Vec<Entry>> {
    let store = Store::open(env.root()).expect("open store");
    let img = store.resolve(name).expect("resolve");
    let mut out = Vec::new();
    for l in img.layers().expect("layers") {
        let blob = store.read_blob(&l.digest).expect("blob");
        let plain: Box<dyn Read> = if blob.starts_with(&[0x1f, 0x8b]) {
            Box::new(flate2::read::GzDecoder::new(&blob[..]))
        } else {
            Box::new(&blob[..])
        };
        let mut ar = tar::Archive::new(plain);
        let mut v = Vec::new();
        for e in ar.entries().expect("entries") {
            let mut e = e.expect("entry");
            let h = e.header().clone();
            let kind = match h.entry_type() {
                tar::EntryType::Directory => 'd',
                tar::EntryType::Symlink => 'l',
                tar::EntryType::Link => 'h',
                tar::EntryType::Char => 'c',
                _ => '-',
            };
            let path = e
                .path()
                .expect("path")
                .to_string_lossy()
                .trim_end_matches('/')
                .to_string();
            let mut data = Vec::new();
            e.read_to_end(&mut data).expect("data");
            v.push(Entry {
                path,
                uid: h.uid().unwrap_or(0),
                gid: h.gid().unwrap_or(0),
                mode: h.mode().unwrap_or(0) & 0o7777,
                kind,
                data,
            });
        }
        out.push(v);
    }
    out
}

/// The entry at `path` in the top-most layer that has it.
pub fn find(env: &Env, name: &str, path: &str) -> Option<Entry> {
    layers(env, name)
        .into_iter()
        .rev()
        .find_map(|l| l.into_iter().find(|e| e.path == path))
}

/// Run a command in the image with irun; its stdout.
pub fn irun(env: &Env, image: &str, args: &[&str]) -> Out {
    env.cmd("irun")
        .args(["--root"])
        .arg(env.root())
        .args(["--rm", image])
        .args(args)
        .run()
}

/// podman as the env's user.
pub fn podman(env: &Env) -> imago_it::Cmd {
    env.podman()
}

pub use imago_it::have;
