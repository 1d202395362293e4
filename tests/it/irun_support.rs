//! Images for the irun tests, written into a user's store with the store library (the
//! same code `iimage import` uses), then handed to the user (chown -R). Layers are
//! plain tars: the busybox rootfs, and a small layer with files owned by uid/gid 33.

#![allow(clippy::unwrap_used)] // test helpers: a failed setup step is a test failure

use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::Command;

use imago_it::{Env, User};
use imago_oci::{BlobRef, Digest};
use imago_store::Store;

const TAR: &str = "application/vnd.oci.image.layer.v1.tar";

/// Image configs used by the tests: (name, config object, with the uid-33 layer).
fn images() -> Vec<(&'static str, serde_json::Value, bool)> {
    use serde_json::json;
    vec![
        ("busybox", json!({"Cmd": ["sh"]}), false),
        ("owned", json!({"Cmd": ["sh"]}), true),
        (
            "cfg",
            json!({"Cmd": ["sh", "-c", "echo $FOO; pwd; id -u"], "Env": ["FOO=from-image", "PATH=/usr/bin:/bin:/usr/sbin:/sbin"], "WorkingDir": "/app/sub", "User": "www-data"}),
            true,
        ),
        // docker's ENTRYPOINT x CMD table, one image per row
        ("row-none-none", json!({}), false),
        ("row-none-exec", json!({"Cmd": ["echo", "cmd-exec"]}), false),
        (
            "row-none-shell",
            json!({"Cmd": ["/bin/sh", "-c", "echo cmd-shell"]}),
            false,
        ),
        (
            "row-exec-none",
            json!({"Entrypoint": ["echo", "ep-exec"]}),
            false,
        ),
        (
            "row-exec-exec",
            json!({"Entrypoint": ["echo", "ep-exec"], "Cmd": ["cmd-exec"]}),
            false,
        ),
        (
            "row-exec-shell",
            json!({"Entrypoint": ["echo", "ep-exec"], "Cmd": ["/bin/sh", "-c", "cmd-shell"]}),
            false,
        ),
        (
            "row-shell-exec",
            json!({"Entrypoint": ["/bin/sh", "-c", "echo ep-shell"], "Cmd": ["cmd-exec"]}),
            false,
        ),
    ]
}

/// A tar layer with /data/www (dir, 33:33) and /data/www/index.html (33:33).
fn owned_layer(env: &Env) -> Vec<u8> {
    let dir = env.path("owned-layer");
    std::fs::create_dir_all(dir.join("data/www")).unwrap();
    std::fs::write(dir.join("data/www/index.html"), b"hello\n").unwrap();
    let out = env.path("owned-layer.tar");
    let st = Command::new("tar")
        .args([
            "--numeric-owner",
            "--owner=33",
            "--group=33",
            "--mtime=2024-01-01 00:00:00Z",
            "--sort=name",
            "-C",
        ])
        .arg(&dir)
        .arg("-cf")
        .arg(&out)
        .arg("data")
        .status()
        .unwrap();
    assert!(st.success());
    std::fs::read(out).unwrap()
}

/// Fill `env`'s store with the test images and give it to the user.
pub fn setup_store(env: &Env) {
    let store = Store::open(env.root()).expect("open store");
    let bb = std::fs::read(env.busybox_tar()).unwrap();
    let owned = owned_layer(env);
    let bb_ref: BlobRef = store.put_layer(&bb[..], TAR).unwrap();
    let owned_ref: BlobRef = store.put_layer(&owned[..], TAR).unwrap();
    for (name, cfg, with_owned) in images() {
        let mut layers = vec![bb_ref.clone()];
        let mut diff_ids = vec![Digest::of(&bb).to_string()];
        if with_owned {
            layers.push(owned_ref.clone());
            diff_ids.push(Digest::of(&owned).to_string());
        }
        let config = serde_json::json!({
            "architecture": "amd64", "os": "linux", "config": cfg,
            "rootfs": {"type": "layers", "diff_ids": diff_ids},
        });
        let m = store
            .put_image_raw(&serde_json::to_vec(&config).unwrap(), &layers)
            .unwrap();
        store.tag(name, &m).unwrap();
    }
    give_tree(env, &env.root());
}

fn give_tree(env: &Env, p: &Path) {
    if env.user == User::Root {
        return;
    }
    let (uid, gid) = env.user.ids().unwrap();
    let st = Command::new("chown")
        .arg("-R")
        .arg(format!("{uid}:{gid}"))
        .arg(p)
        .status()
        .unwrap();
    assert!(st.success());
    std::fs::set_permissions(p, std::fs::Permissions::from_mode(0o755)).unwrap();
}
