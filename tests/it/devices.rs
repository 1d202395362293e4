//! `irun --device`: a host device bound at another path, and CDI devices from a spec dir
//! the test writes (a fake GPU backed by /dev/null, a library dir mounted read-only and
//! an env var), from the store and from a `.sqsh` file, as root, imago-sub and
//! imago-nosub; unknown devices and broken specs fail with exit 125 and name what is
//! wrong.

#![allow(clippy::unwrap_used)] // test helpers: a failed setup step is a test failure

use imago_it::{users, Env, Out, User};

use crate::irun_support::setup_store;

fn env_for(user: User) -> Env {
    let env = Env::new(user);
    setup_store(&env);
    env
}

/// irun with the CDI spec dirs of this test only.
fn irun(env: &Env, specs: &str, args: &[&str]) -> Out {
    env.cmd("irun")
        .env("IMAGO_CDI_SPEC_DIRS", env.path(specs))
        .args(args)
        .run()
}

/// A spec dir with the fake GPU: its node is the host's /dev/null, its library dir is
/// `lib` of the scratch dir.
fn write_spec(env: &Env) {
    env.mkdir("cdi");
    env.write("gpu-lib/libfakegpu.so", "fake library\n");
    let lib = env.path("gpu-lib");
    let spec = format!(
        r#"cdiVersion: "0.6.0"
kind: example.com/gpu
containerEdits:
  env:
  - FAKE_GPU_DRIVER=1.0
  mounts:
  - hostPath: {lib}
    containerPath: /usr/lib/fakegpu
    options: [ro, nosuid, nodev, bind]
devices:
- name: gpu0
  containerEdits:
    env: [FAKE_GPU_VISIBLE=0]
    deviceNodes:
    - path: /dev/fakegpu0
      hostPath: /dev/null
      type: c
- name: gpu1
  containerEdits:
    deviceNodes:
    - path: /dev/fakegpu1
      hostPath: /dev/zero
"#,
        lib = lib.display()
    );
    env.write("cdi/fakegpu.yaml", spec);
}

#[test]
fn host_device_appears_and_works() {
    for u in users() {
        let env = env_for(u);
        let out = irun(
            &env,
            "none",
            &[
                "--rm",
                "--device",
                "/dev/null:/dev/mydev",
                "busybox",
                "sh",
                "-c",
                "echo x > /dev/mydev && stat -c %F /dev/mydev && wc -c < /dev/mydev",
            ],
        )
        .success();
        assert_eq!(out.stdout(), "character special file\n0\n", "{out}");
        // a node bound outside /dev, in the image's own tree
        let out = irun(
            &env,
            "none",
            &[
                "--rm",
                "--device",
                "/dev/zero:/opt/zero",
                "busybox",
                "sh",
                "-c",
                "head -c 3 /opt/zero | wc -c",
            ],
        )
        .success();
        assert_eq!(out.stdout().trim(), "3", "{out}");
        irun(
            &env,
            "none",
            &["--rm", "--device", "/dev/no-such-node", "busybox", "true"],
        )
        .code_is(125)
        .fails_with("/dev/no-such-node` does not exist");
        irun(
            &env,
            "none",
            &["--rm", "--device", "/dev/null:/x:rz", "busybox", "true"],
        )
        .code_is(125)
        .fails_with("invalid --device `/dev/null:/x:rz`");
    }
}

#[test]
fn cdi_device_node_mount_and_env() {
    for u in users() {
        let env = env_for(u);
        write_spec(&env);
        let script = "stat -c %F /dev/fakegpu0; echo ok > /dev/fakegpu0 && echo written; \
                      cat /usr/lib/fakegpu/libfakegpu.so; \
                      touch /usr/lib/fakegpu/new 2>/dev/null || echo read-only; \
                      echo $FAKE_GPU_DRIVER $FAKE_GPU_VISIBLE; test -e /dev/fakegpu1 || echo no-gpu1";
        let out = irun(
            &env,
            "cdi",
            &[
                "--rm",
                "--device",
                "example.com/gpu=gpu0",
                "busybox",
                "sh",
                "-c",
                script,
            ],
        )
        .success();
        assert_eq!(
            out.stdout(),
            "character special file\nwritten\nfake library\nread-only\n1.0 0\nno-gpu1\n",
            "{out}"
        );
        // `-e` wins over a spec's variable; `=all` brings every device of the kind
        let out = irun(
            &env,
            "cdi",
            &[
                "--rm",
                "-e",
                "FAKE_GPU_DRIVER=mine",
                "--device",
                "example.com/gpu=all",
                "busybox",
                "sh",
                "-c",
                "echo $FAKE_GPU_DRIVER; ls /dev/fakegpu*",
            ],
        )
        .success();
        assert_eq!(
            out.stdout(),
            "mine\n/dev/fakegpu0\n/dev/fakegpu1\n",
            "{out}"
        );
    }
}

#[test]
fn cdi_device_kept_by_a_detached_container() {
    // One user is enough for the record round trip; the mounts themselves are covered
    // for every user above. imago-nosub: the least privileged.
    let u = users().into_iter().last().unwrap();
    let env = env_for(u);
    write_spec(&env);
    let id = irun(
        &env,
        "cdi",
        &[
            "-d",
            "--device",
            "example.com/gpu=gpu0",
            "busybox",
            "sh",
            "-c",
            "cat /usr/lib/fakegpu/libfakegpu.so; echo $FAKE_GPU_VISIBLE",
        ],
    )
    .success()
    .stdout();
    let id = id.trim();
    let code = env.cmd("ictr").args(["wait", id]).ok();
    assert_eq!(code.stdout().trim(), "0", "{code}");
    let logs = env.cmd("ictr").args(["logs", id]).ok();
    assert_eq!(logs.stdout(), "fake library\n0\n", "{logs}");
    // started again from its record, without the spec dirs: it keeps its device
    env.cmd("ictr").args(["start", id]).ok();
    let code = env.cmd("ictr").args(["wait", id]).ok();
    assert_eq!(code.stdout().trim(), "0", "{code}");
    let logs = env.cmd("ictr").args(["logs", id]).ok();
    assert_eq!(logs.stdout(), "fake library\n0\n".repeat(2), "{logs}");
    env.cmd("ictr").args(["rm", "-f", id]).ok();
}

#[test]
fn cdi_unknown_device_or_broken_spec_fails_clearly() {
    for u in users() {
        let env = env_for(u);
        write_spec(&env);
        irun(
            &env,
            "cdi",
            &[
                "--rm",
                "--device",
                "example.com/gpu=gpu7",
                "busybox",
                "true",
            ],
        )
        .code_is(125)
        .fails_with("unknown CDI device `example.com/gpu=gpu7`");
        irun(
            &env,
            "cdi",
            &["--rm", "--device", "other.org/nic=0", "busybox", "true"],
        )
        .code_is(125)
        .fails_with("kind `other.org/nic`");
        // a spec with a device node that lacks its path
        env.write(
            "cdi/broken.json",
            r#"{"cdiVersion":"0.6.0","kind":"broken.io/acc","devices":[{"name":"a0","containerEdits":{"deviceNodes":[{"hostPath":"/dev/null"}]}}]}"#,
        );
        let out = irun(
            &env,
            "cdi",
            &["--rm", "--device", "broken.io/acc=a0", "busybox", "true"],
        )
        .code_is(125);
        let err = out.stderr();
        assert!(
            err.contains("broken.json")
                && err.contains("devices[0].containerEdits.deviceNodes[0]")
                && err.contains("path"),
            "{out}"
        );
        // the broken spec is another vendor's: example.com's devices still work
        let out = irun(
            &env,
            "cdi",
            &[
                "--rm",
                "--device",
                "example.com/gpu=gpu0",
                "busybox",
                "true",
            ],
        )
        .success();
        assert!(
            out.stderr().contains("broken.json"),
            "a skipped spec is said: {out}"
        );
        // a spec that is not YAML at all
        env.write("cdi/garbage.yaml", "kind: [unclosed\n");
        irun(
            &env,
            "cdi",
            &[
                "--rm",
                "--device",
                "example.com/gpu=gpu9",
                "busybox",
                "true",
            ],
        )
        .code_is(125)
        .fails_with("garbage.yaml");
    }
}

#[test]
fn cdi_device_in_a_squashfs_image() {
    for u in users() {
        let env = env_for(u);
        write_spec(&env);
        let sqsh = env.path("busybox.sqsh");
        env.cmd("iimage")
            .args(["squash", "busybox", "-o"])
            .arg(&sqsh)
            .ok();
        let out = env
            .cmd("irun")
            .env("IMAGO_CDI_SPEC_DIRS", env.path("cdi"))
            .args(["--rm", "--device", "example.com/gpu=gpu0"])
            .arg(&sqsh)
            .args(["sh", "-c", "stat -c %F /dev/fakegpu0; cat /usr/lib/fakegpu/libfakegpu.so; echo $FAKE_GPU_VISIBLE"])
            .run()
            .success();
        assert_eq!(
            out.stdout(),
            "character special file\nfake library\n0\n",
            "{out}"
        );
    }
}
