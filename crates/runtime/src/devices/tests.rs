use super::*;

fn b(src: &str, dst: &str, ro: bool) -> UserMount {
    UserMount::Bind {
        src: src.into(),
        dst: dst.into(),
        ro,
    }
}

fn v(s: &[&str]) -> Vec<String> {
    s.iter().map(|x| x.to_string()).collect()
}

const SPEC: &str = r#"
cdiVersion: "0.6.0"
kind: example.com/gpu
containerEdits:
  env: [GPU_SPEC=1]
  mounts:
  - hostPath: /etc
    containerPath: /usr/lib/gpu/deep
    options: [ro, nosuid, nodev, bind]
  - hostPath: /
    containerPath: /usr/lib/gpu
    type: bind
    options: [rw, ro]
  hooks:
  - hookName: createContainer
    path: /usr/bin/nvidia-ctk
    args: [nvidia-ctk, hook, update-ldcache]
devices:
- name: gpu0
  containerEdits:
    env: [GPU=0]
    deviceNodes:
    - path: /dev/gpu0
      hostPath: /dev/null
      type: c
      major: 1
      minor: 3
      permissions: rw
- name: gpu1
  containerEdits:
    deviceNodes:
    - path: /dev/gpu1
      hostPath: /dev/zero
    additionalGids: [0, 44]
"#;

fn spec_dir(text: &str) -> tempfile::TempDir {
    let d = tempfile::tempdir().unwrap();
    std::fs::write(d.path().join("gpu.yaml"), text).unwrap();
    d
}

#[test]
fn host_devices() {
    let p = plan(&v(&["/dev/null:/dev/mydev", "/dev/zero:r"]), &[]).unwrap();
    assert_eq!(
        p.mounts,
        [
            b("/dev/null", "/dev/mydev", false),
            b("/dev/zero", "/dev/zero", false)
        ]
    );
    assert_eq!(p.notes.len(), 1, "r-only is not enforced: {:?}", p.notes);
    let e = plan(&v(&["/dev/no-such-node"]), &[]).unwrap_err();
    assert!(e.to_string().contains("does not exist"), "{e}");
    let e = plan(&v(&["/etc/passwd"]), &[]).unwrap_err();
    assert!(e.to_string().contains("not a device node"), "{e}");
    assert!(plan(&v(&["dev/null"]), &[]).is_err());
    // a directory of nodes is bound whole
    let p = plan(&v(&["/dev:/host-dev"]), &[]).unwrap();
    assert_eq!(p.mounts, [b("/dev", "/host-dev", false)]);
}

#[test]
fn cdi_device_edits() {
    let d = spec_dir(SPEC);
    let dirs = [d.path().to_path_buf()];
    let p = plan(&v(&["example.com/gpu=gpu0", "/dev/full"]), &dirs).unwrap();
    assert_eq!(
        p.mounts,
        [
            b("/", "/usr/lib/gpu", true),
            b("/etc", "/usr/lib/gpu/deep", true),
            b("/dev/null", "/dev/gpu0", false),
            b("/dev/full", "/dev/full", false),
        ]
    );
    assert_eq!(p.env, ["GPU_SPEC=1", "GPU=0"]);
    assert_eq!(p.notes.len(), 1, "{:?}", p.notes);
    assert!(p.notes[0].contains("createContainer hook `nvidia-ctk hook update-ldcache` not run"));
    let all = plan(&v(&["example.com/gpu=all"]), &dirs).unwrap();
    assert_eq!(all.mounts.len(), 4);
    assert!(
        all.notes.iter().any(|n| n.contains("additionalGids 44 ")),
        "{:?}",
        all.notes
    );
    let img = ImageDefaults {
        env: v(&["A=1"]),
        ..Default::default()
    };
    assert_eq!(
        with_device_env(&img, &p).env,
        ["A=1", "GPU_SPEC=1", "GPU=0"]
    );
}

#[test]
fn cdi_errors_name_what_is_wrong() {
    let d = spec_dir(SPEC);
    let dirs = [d.path().to_path_buf()];
    let e = plan(&v(&["example.com/gpu=gpu9"]), &dirs).unwrap_err();
    assert!(e.to_string().contains("example.com/gpu=gpu9"), "{e}");
    let d2 = spec_dir(&SPEC.replace("major: 1", "major: 9"));
    let e = plan(&v(&["example.com/gpu=gpu0"]), &[d2.path().to_path_buf()]).unwrap_err();
    assert!(e.to_string().contains("is 1:3 on the host"), "{e}");
    let d3 = spec_dir(&SPEC.replace("hostPath: /dev/zero", "hostPath: /dev/no-such"));
    let e = plan(&v(&["example.com/gpu=gpu1"]), &[d3.path().to_path_buf()]).unwrap_err();
    assert!(
        e.to_string().contains("/dev/no-such` does not exist"),
        "{e}"
    );
    let d4 = spec_dir(&SPEC.replace("type: bind", "type: proc"));
    let e = plan(&v(&["example.com/gpu=gpu1"]), &[d4.path().to_path_buf()]).unwrap_err();
    assert!(e.to_string().contains("type `proc`"), "{e}");
}

#[test]
fn spec_dirs_env() {
    assert_eq!(
        spec_dirs_from(None),
        [Path::new("/etc/cdi"), Path::new("/var/run/cdi")]
    );
    assert!(spec_dirs_from(Some("".into())).is_empty());
    assert_eq!(
        spec_dirs_from(Some("/a:/b".into())),
        [Path::new("/a"), Path::new("/b")]
    );
}
