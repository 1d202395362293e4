//! Hostile images: every path imago creates, opens or mounts on inside a container must
//! resolve inside the container's root. The images link `/etc` (the hosts, hostname and
//! resolv.conf imago binds), `-v`/`--mount`/`--tmpfs` targets and their parents, `-w` and
//! WORKDIR dirs and VOLUME targets to a world-writable host canary dir (through the old
//! root, an absolute path and a `..` chain); after every `irun` and `ibuild` RUN the
//! canary must be empty, and the run must either work inside the container or fail naming
//! the path. Also: a spec of about 1 MB (the control channel has no message-size limit)
//! and io_uring refused by the default seccomp filter. Run as every user of `users()`.

#![allow(clippy::unwrap_used)] // test helpers: a failed setup step is a test failure

use std::path::{Path, PathBuf};

use imago_it::{users, Env, Out, User};

use crate::hostile_support::{import, write_tar, Aim, Canary, Extra};

/// A user's store with one hostile image per [`Aim`] (`hostile-<aim>`): `/etc` and `/data`
/// are links to the canary, `/tgt`, `/dev`, `/proc`, `/sys` to dirs below it;
/// WORKDIR /data/wd, VOLUME /data/vol.
struct Hostile {
    env: Env,
    canary: Canary,
    /// A bind source holding one file, `f`.
    src: PathBuf,
    /// Force the component walk (`IMAGO_INROOT=walk`), the resolver of kernels without
    /// openat2.
    walk: bool,
}

fn hostile(user: User) -> Hostile {
    let env = Env::new(user);
    let canary = Canary::new(&env);
    for aim in Aim::ALL {
        let t = aim.target(&canary.0);
        let (tt, dev, proc, sys) = (
            format!("{t}/t"),
            format!("{t}/d"),
            format!("{t}/p"),
            format!("{t}/s"),
        );
        let tar = env.path(&format!("hostile-{}.tar", aim.name()));
        write_tar(
            &tar,
            &["etc"],
            &[
                Extra::Link("etc", &t),
                Extra::Link("data", &t),
                Extra::Link("tgt", &tt),
                Extra::Link("dev", &dev),
                Extra::Link("proc", &proc),
                Extra::Link("sys", &sys),
                Extra::Link("filelink", "/bin/busybox"),
                Extra::Link("loop", "loop2"),
                Extra::Link("loop2", "/loop"),
            ],
        );
        import(
            &env,
            &tar,
            &format!("hostile-{}", aim.name()),
            &["CMD [\"sh\"]", "WORKDIR /data/wd", "VOLUME /data/vol"],
        );
    }
    let src = env.mkdir("src");
    env.write("src/f", "src-file\n");
    Hostile {
        env,
        canary,
        src,
        walk: false,
    }
}

impl Hostile {
    fn irun(&self, args: &[&str]) -> Out {
        let mut c = self.env.cmd("irun");
        if self.walk {
            c = c.env("IMAGO_INROOT", "walk");
        }
        c.arg("--rm").args(args).run()
    }

    fn src_unchanged(&self, what: &str) {
        let names: Vec<String> = std::fs::read_dir(&self.src)
            .unwrap()
            .flatten()
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .collect();
        assert_eq!(
            names,
            vec!["f".to_string()],
            "{what}: the bind source changed"
        );
    }
}

fn label(u: User, aim: Aim, what: &str) -> String {
    format!("[{}] hostile-{} {what}", u.name(), aim.name())
}

#[test]
fn hostile_irun_etc_files_workdir_and_volume() {
    etc_files_workdir_and_volume(false);
}

#[test]
fn hostile_irun_etc_files_workdir_and_volume_walk_resolver() {
    etc_files_workdir_and_volume(true);
}

fn etc_files_workdir_and_volume(walk: bool) {
    for u in users() {
        let mut h = hostile(u);
        h.walk = walk;
        for aim in Aim::ALL {
            let img = format!("hostile-{}", aim.name());
            // /etc/hosts, hostname, resolv.conf and WORKDIR /data/wd land inside the root.
            let out = h.irun(&[
                "--hostname",
                "hh",
                &img,
                "sh",
                "-c",
                "cat /etc/hostname; test -f /etc/hosts && test -f /etc/resolv.conf && pwd -P; \
                 echo x > /dev/null && test -c /dev/zero && test -L /dev/ptmx && \
                 test -c /dev/pts/ptmx && test -d /proc/self/fd && test -d /sys/kernel && \
                 wc -c < /proc/timer_list",
            ]);
            h.canary
                .assert_untouched(&label(u, aim, "irun (etc files, WORKDIR, VOLUME)"));
            let out = out.success();
            let stdout = out.stdout();
            let lines: Vec<&str> = stdout.lines().collect();
            assert_eq!(lines.first(), Some(&"hh"), "{out}");
            assert!(lines.get(1).is_some_and(|l| l.ends_with("/wd")), "{out}");
            assert_eq!(lines.get(2), Some(&"0"), "/proc/timer_list masked: {out}");
        }
    }
}

#[test]
fn hostile_irun_binds_tmpfs_and_workdir_flag() {
    binds_tmpfs_and_workdir_flag(false);
}

#[test]
fn hostile_irun_binds_tmpfs_and_workdir_flag_walk_resolver() {
    binds_tmpfs_and_workdir_flag(true);
}

fn binds_tmpfs_and_workdir_flag(walk: bool) {
    for u in users() {
        let mut h = hostile(u);
        h.walk = walk;
        let src = h.src.display().to_string();
        for aim in Aim::ALL {
            let img = format!("hostile-{}", aim.name());
            // -v under a linked parent, -w under a linked parent
            let v = format!("{src}:/data/x");
            let out = h.irun(&[
                "-v",
                &v,
                "-w",
                "/data/w2",
                &img,
                "sh",
                "-c",
                "cat /data/x/f; pwd -P",
            ]);
            h.canary
                .assert_untouched(&label(u, aim, "-v /data/x -w /data/w2"));
            let out = out.success();
            assert!(out.stdout().starts_with("src-file\n"), "{out}");
            assert!(out.stdout().trim_end().ends_with("/w2"), "{out}");
            // -v whose target itself is a link
            let v = format!("{src}:/tgt");
            // (-w /: WORKDIR /data/wd would be made, rightly, in the bind on /<canary>)
            let out = h.irun(&["-v", &v, "-w", "/", &img, "cat", "/tgt/f"]);
            h.canary.assert_untouched(&label(u, aim, "-v /tgt"));
            assert_eq!(out.success().stdout(), "src-file\n");
            // --mount type=bind, read-only: the remount acts on the new mount
            let m = format!("type=bind,source={src},target=/data/m,readonly");
            let out = h.irun(&[
                "--mount",
                &m,
                &img,
                "sh",
                "-c",
                "cat /data/m/f; touch /data/m/z 2>/dev/null && echo writable || echo readonly",
            ]);
            h.canary.assert_untouched(&label(u, aim, "--mount /data/m"));
            assert_eq!(out.success().stdout(), "src-file\nreadonly\n");
            // --tmpfs under a linked parent
            let out = h.irun(&[
                "--tmpfs",
                "/data/t",
                &img,
                "sh",
                "-c",
                "touch /data/t/ok && grep -c '/t tmpfs ' /proc/mounts",
            ]);
            h.canary.assert_untouched(&label(u, aim, "--tmpfs /data/t"));
            assert_eq!(out.success().stdout(), "1\n");
            // a `..` chain in the flag itself stays in the root as well
            let dots = format!("/../../../../..{}/dots", h.canary.0.display());
            let out = h.irun(&["--tmpfs", &dots, &img, "true"]);
            h.canary
                .assert_untouched(&label(u, aim, "--tmpfs /../..<canary>"));
            out.success();
            h.src_unchanged(&label(u, aim, "binds"));
        }
        // targets that cannot be made inside the root are refused, naming the path
        let v = format!("{src}:/filelink/x");
        h.irun(&["-v", &v, "hostile-abs", "true"])
            .code_is(125)
            .fails_with("`/filelink/x`: `busybox` is not a directory");
        let out = h.irun(&["--tmpfs", "/loop/x", "hostile-abs", "true"]);
        out.code_is(125)
            .fails_with("`/loop/x`: too many levels of symbolic links");
        h.canary
            .assert_untouched(&format!("[{}] refused targets", u.name()));
        h.src_unchanged("refused targets");
    }
}

#[test]
fn hostile_ibuild_run_and_run_mounts() {
    for u in users() {
        let h = hostile(u);
        for aim in Aim::ALL {
            let dir = format!("ctx-{}", aim.name());
            let d = h.env.mkdir(&dir);
            h.env.write(&format!("{dir}/ctx.txt"), "from-context\n");
            let df = format!(
                "FROM hostile-{}\n\
                 RUN cat /etc/hostname && echo built > /data/out\n\
                 RUN --mount=type=bind,target=/data/b cat /data/b/ctx.txt\n\
                 RUN --mount=type=tmpfs,target=/data/t touch /data/t/x\n\
                 RUN --mount=type=cache,target=/data/c touch /data/c/x\n\
                 WORKDIR /data/w3\n\
                 RUN pwd -P > /data/pwd\n",
                aim.name()
            );
            h.env.write(&format!("{dir}/Dockerfile"), df);
            let mut c = h
                .env
                .cmd("ibuild")
                .args(["-t", &format!("built-{}", aim.name())])
                .arg(&d);
            c.command().current_dir(&d);
            let out = c.run();
            h.canary
                .assert_untouched(&label(u, aim, "ibuild RUN (+ --mount bind/tmpfs/cache)"));
            let out = out.success();
            assert!(out.stderr().contains("from-context"), "{out}");
        }
    }
}

#[test]
fn hostile_passwd_on_dev_zero_fails_fast_naming_the_file() {
    for u in users() {
        let env = Env::new(u);
        let tar = env.path("zero.tar");
        write_tar(
            &tar,
            &["etc"],
            &[Extra::Dir("etc"), Extra::Link("etc/passwd", "/dev/zero")],
        );
        import(&env, &tar, "zero", &["CMD [\"true\"]"]);
        let out = env
            .cmd_path("timeout")
            .args(["60"])
            .arg(imago_it::bin("irun"))
            .args(["--rm", "-u", "nobody", "zero"])
            .run();
        assert_ne!(
            out.code(),
            Some(124),
            "irun hung reading /etc/passwd: {out}"
        );
        if u == User::NoSub {
            // The single mapping places its one id at the user, looked up before the
            // container's /dev exists: the link to /dev/zero dangles, like no passwd.
            out.fails_with("unable to find user nobody");
        } else {
            out.fails_with("/etc/passwd");
        }
    }
}

fn big(n: usize, c: char) -> String {
    std::iter::repeat_n(c, n).collect()
}

#[test]
fn big_spec_one_megabyte_through_irun_and_ibuild() {
    for u in users() {
        let env = Env::new(u);
        let tar = env.path("bb.tar");
        write_tar(&tar, &[], &[]);
        import(&env, &tar, "busybox", &["CMD [\"sh\"]"]);
        let mut c = env.cmd("irun").arg("--rm");
        for i in 0..10 {
            c = c.args(["-e", &format!("B{i}={}", big(100_000, 'a'))]);
        }
        let out = c
            .args(["busybox", "sh", "-c", "echo ${#B0} ${#B9}"])
            .run()
            .success();
        assert_eq!(out.stdout(), "100000 100000\n", "[{}]", u.name());
        // ibuild: big ENV and ARG values reach a RUN
        let d = env.mkdir("bigctx");
        // (a Dockerfile line may have at most 64 KiB: continuations split the values)
        let long = |c: char| vec![big(25_000, c); 4].join("\\\n");
        let mut df = String::from("FROM busybox\n");
        for i in 0..8 {
            df.push_str(&format!("ENV E{i}={}\n", long('e')));
        }
        for i in 0..2 {
            df.push_str(&format!("ARG A{i}={}\n", long('r')));
        }
        df.push_str("RUN test ${#E7} -eq 100000 && test ${#A1} -eq 100000 && echo big-ok\n");
        env.write("bigctx/Dockerfile", df);
        let mut c = env.cmd("ibuild").args(["-t", "big"]).arg(&d);
        c.command().current_dir(&d);
        let out = c.run().success();
        assert!(out.stderr().contains("big-ok"), "[{}] {out}", u.name());
    }
}

const URING_PROBE: &str = r#"
#include <errno.h>
#include <stdio.h>
#include <unistd.h>
#include <sys/syscall.h>
int main(void) {
    long nr[3] = {425, 426, 427}; /* io_uring_setup, io_uring_enter, io_uring_register */
    for (int i = 0; i < 3; i++) {
        errno = 0;
        long r = syscall(nr[i], i == 0 ? 1 : -1, 0, 0, 0, 0, 0);
        printf("%ld:%d ", r, r < 0 ? errno : 0);
    }
    printf("\n");
    return 0;
}
"#;

fn compile_probe(dir: &Path) -> Option<PathBuf> {
    imago_it::static_c_program(dir, "probe", URING_PROBE, "the io_uring probe")
}

#[test]
fn io_uring_is_refused_by_the_default_filter() {
    let probe_dir = imago_it::scratch_base().join(format!("imago-uring-{}", std::process::id()));
    let Some(probe) = compile_probe(&probe_dir) else {
        return;
    };
    let host = std::process::Command::new(&probe).output().unwrap();
    let host = String::from_utf8_lossy(&host.stdout).into_owned();
    if host.starts_with("-1:1 ") || host.starts_with("-1:38 ") {
        imago_it::skip(&format!(
            "io_uring is disabled on this host ({host}): the filter cannot be told apart"
        ));
        return;
    }
    for u in users() {
        let env = Env::new(u);
        let tar = env.path("bb.tar");
        write_tar(&tar, &[], &[]);
        import(&env, &tar, "busybox", &["CMD [\"sh\"]"]);
        let pdir = env.mkdir("probe");
        std::fs::copy(&probe, pdir.join("probe")).unwrap();
        env.give(&pdir.join("probe"));
        let v = format!("{}:/probe:ro", pdir.display());
        let out = env
            .cmd("irun")
            .args(["--rm", "-v", &v, "busybox", "/probe/probe"])
            .run()
            .success();
        assert_eq!(out.stdout(), "-1:1 -1:1 -1:1 \n", "[{}] {out}", u.name());
        // control: without the filter the calls reach the kernel (EFAULT / EBADF)
        let out = env
            .cmd("irun")
            .args([
                "--rm",
                "--security-opt",
                "seccomp=unconfined",
                "-v",
                &v,
                "busybox",
                "/probe/probe",
            ])
            .run()
            .success();
        assert!(!out.stdout().contains(":1 "), "[{}] {out}", u.name());
    }
    let _ = std::fs::remove_dir_all(probe_dir);
}

/// A RUN that replaces a linked `/etc` with a link to a host dir: after the RUN, ibuild
/// must not remove (or create) anything in that host dir while it tidies the mount
/// points out of the upper dir (the tidying walks the upper dir without following
/// links).
#[test]
fn hostile_ibuild_run_relinking_etc_leaves_host_files_alone() {
    for u in users() {
        let env = Env::new(u);
        let victim = env.mkdir("victim");
        std::fs::set_permissions(&victim, std::os::unix::fs::PermissionsExt::from_mode(0o777))
            .unwrap();
        for f in ["hosts", "hostname", "resolv.conf"] {
            env.write(&format!("victim/{f}"), "");
        }
        let tar = env.path("etclink.tar");
        write_tar(
            &tar,
            &["etc"],
            &[Extra::Dir("realetc"), Extra::Link("etc", "/realetc")],
        );
        import(&env, &tar, "etclink", &["CMD [\"sh\"]"]);
        let d = env.mkdir("ctx");
        let df = format!(
            "FROM etclink\nRUN rm /etc && ln -s {} /etc\n",
            victim.display()
        );
        env.write("ctx/Dockerfile", df);
        let mut c = env.cmd("ibuild").args(["-t", "relinked"]).arg(&d);
        c.command().current_dir(&d);
        let out = c.run();
        let mut left: Vec<String> = std::fs::read_dir(&victim)
            .unwrap()
            .flatten()
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .collect();
        left.sort();
        assert_eq!(
            left,
            vec!["hostname", "hosts", "resolv.conf"],
            "[{}] ibuild removed host files: {out}",
            u.name()
        );
    }
}

/// Descriptors irun inherits (here a directory of the host on fd 9) must not stay open in
/// the container's pid 1, where `/proc/1/fd/9` would lead a process with all
/// capabilities back to the host; nor reach the command.
#[test]
fn inherited_fds_do_not_reach_the_container() {
    for u in users() {
        let env = Env::new(u);
        let tar = env.path("bb.tar");
        write_tar(&tar, &[], &[]);
        import(&env, &tar, "busybox", &["CMD [\"sh\"]"]);
        let script = format!(
            "exec 9</ 8</; exec {} --rm --cap-add ALL busybox sh -c 'ls /proc/1/fd; echo -; ls /proc/self/fd'",
            imago_it::bin("irun").display()
        );
        let out = env.cmd_path("sh").args(["-c", &script]).run().success();
        let fds: Vec<String> = out.stdout().lines().map(str::to_owned).collect();
        assert!(
            !fds.iter().any(|f| f == "8" || f == "9"),
            "[{}] inherited fds in the container: {out}",
            u.name()
        );
    }
}
