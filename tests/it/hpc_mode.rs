//! irun's HPC run mode, piece by piece and as the `--hpc` profile, as root, imago-sub
//! (subuid range) and imago-nosub (single mapping): keep-id shows the caller's uid and
//! files made in a bound dir are the caller's; `--pid host` sees the host's processes;
//! `--ipc host` shares SysV segments and /dev/shm with the host; `--env-host` passes the
//! caller's variables but the denied ones; a launcher's variables pass by default and
//! `-e` wins; `--hpc` runs in the bound working dir.

#![allow(clippy::unwrap_used)] // test helpers: a failed setup step is a test failure

use std::os::unix::fs::MetadataExt;

use imago_it::{users, Env, Out, User};

use crate::irun_support::setup_store;

fn env_for(user: User) -> Env {
    let env = Env::new(user);
    setup_store(&env);
    env
}

fn irun(env: &Env, args: &[&str]) -> Out {
    env.cmd("irun").args(args).run()
}

/// The uid and gid the user's commands run with.
fn ids(env: &Env) -> (u32, u32) {
    env.user.ids().unwrap()
}

#[test]
fn keep_id_runs_as_the_caller_and_files_are_the_callers() {
    for u in users() {
        let env = env_for(u);
        let (uid, gid) = ids(&env);
        let vol = env.mkdir("vol");
        let v = format!("{}:/vol", vol.display());
        // `cfg` has USER www-data: keep-id replaces it with the caller.
        let script = "id -u; id -g; echo $HOME; touch /vol/made; mkdir /vol/dir";
        for image in ["busybox", "cfg"] {
            let out = irun(
                &env,
                &[
                    "--rm", "--userns", "keep-id", "-v", &v, image, "sh", "-c", script,
                ],
            )
            .success();
            let lines: Vec<String> = out.stdout().lines().map(str::to_owned).collect();
            assert_eq!(lines[..2], [uid.to_string(), gid.to_string()], "{out}");
            // busybox's passwd knows root only: others get the caller's HOME.
            let home = match uid {
                0 => "/root".to_string(),
                _ => env.home().display().to_string(),
            };
            assert_eq!(lines[2], home, "{out}");
            for f in ["made", "dir"] {
                let m = std::fs::metadata(vol.join(f)).unwrap();
                assert_eq!((m.uid(), m.gid()), (uid, gid), "[{}] {f}", u.name());
            }
            std::fs::remove_file(vol.join("made")).unwrap();
            std::fs::remove_dir(vol.join("dir")).unwrap();
        }
        // The caller is asked for: no other user.
        irun(
            &env,
            &["--rm", "--userns", "keep-id", "-u", "33", "busybox", "true"],
        )
        .code_is(125)
        .fails_with("drop -u");
        irun(&env, &["--rm", "--userns", "bogus", "busybox", "true"]).code_is(125);
        // Without it, the image's user as before.
        let out = irun(&env, &["--rm", "cfg", "id", "-u"]).success();
        assert_eq!(out.stdout(), "33\n", "{out}");
    }
}

#[test]
fn pid_host_sees_the_hosts_processes() {
    let me = std::process::id();
    let look = format!("test -e /proc/{me}/stat && echo seen || echo unseen; echo $$");
    for u in users() {
        let env = env_for(u);
        let out = irun(
            &env,
            &["--rm", "--pid", "host", "busybox", "sh", "-c", &look],
        )
        .success();
        let text = out.stdout();
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines[0], "seen", "{out}");
        let pid: u32 = lines[1].parse().unwrap();
        assert!(pid > 2, "a host pid, not the container's 1 or 2: {out}");
        // --no-init too: the command is a plain host process.
        let out = irun(
            &env,
            &[
                "--rm",
                "--pid",
                "host",
                "--no-init",
                "busybox",
                "sh",
                "-c",
                &look,
            ],
        )
        .success();
        assert!(out.stdout().starts_with("seen\n"), "{out}");
        // The default stays private.
        let out = irun(&env, &["--rm", "busybox", "sh", "-c", &look]).success();
        assert!(out.stdout().starts_with("unseen\n"), "{out}");
        irun(&env, &["--rm", "--pid", "bogus", "busybox", "true"]).code_is(125);
    }
}

/// A SysV shared memory segment of the host's IPC namespace, removed on drop.
struct Segment {
    id: i32,
    key: i32,
}

impl Segment {
    fn new(key: i32) -> Segment {
        // SAFETY: shmget with plain integer arguments; no memory is attached.
        #[allow(unsafe_code)]
        let id = unsafe { libc::shmget(key, 4096, libc::IPC_CREAT | 0o666) };
        assert!(id >= 0, "shmget: {}", std::io::Error::last_os_error());
        Segment { id, key }
    }
}

impl Drop for Segment {
    fn drop(&mut self) {
        // SAFETY: IPC_RMID of our own segment; a null buf is allowed for IPC_RMID.
        #[allow(unsafe_code)]
        let r = unsafe { libc::shmctl(self.id, libc::IPC_RMID, std::ptr::null_mut()) };
        assert_eq!(r, 0, "shmctl IPC_RMID");
    }
}

#[test]
fn ipc_host_shares_sysv_segments_and_dev_shm() {
    // Mode 0666: every test user may use it (root made it).
    let seg = Segment::new(0x1a60_0000 + (std::process::id() as i32 & 0xffff));
    // /proc/sysvipc/shm lists the segments of the reader's IPC namespace, key first.
    let find = format!(
        "awk '$1 == {} {{ print \"found\" }}' /proc/sysvipc/shm; echo done",
        seg.key
    );
    for u in users() {
        let env = env_for(u);
        let out = irun(
            &env,
            &["--rm", "--ipc", "host", "busybox", "sh", "-c", &find],
        )
        .success();
        assert_eq!(out.stdout(), "found\ndone\n", "{out}");
        let out = irun(&env, &["--rm", "busybox", "sh", "-c", &find]).success();
        assert_eq!(out.stdout(), "done\n", "private by default: {out}");
        // POSIX shared memory is files in /dev/shm: the host's.
        let name = format!("imago-hpc-{}-{}", std::process::id(), u.name());
        let host_file = std::path::Path::new("/dev/shm").join(&name);
        let write = format!("echo hi > /dev/shm/{name}");
        irun(
            &env,
            &["--rm", "--ipc", "host", "busybox", "sh", "-c", &write],
        )
        .success();
        assert_eq!(std::fs::read_to_string(&host_file).unwrap(), "hi\n");
        std::fs::remove_file(&host_file).unwrap();
        irun(&env, &["--rm", "busybox", "sh", "-c", &write]).success();
        assert!(
            !host_file.exists(),
            "[{}] private /dev/shm leaked",
            u.name()
        );
    }
}

#[test]
fn env_host_passes_all_but_the_denied_launchers_by_default() {
    let show = "echo FOO=$FOO; echo LD=$LD_IMAGO_TEST; echo PATH=$PATH; echo SLURM=$SLURM_FOO; \
                echo PMIX=$PMIX_RANK; echo IMAGO=$IMAGO_ROOT";
    for u in users() {
        let env = env_for(u);
        let cmd = |args: &[&str]| {
            env.cmd("irun")
                .env("FOO", "bar")
                .env("LD_IMAGO_TEST", "1")
                .env("SLURM_FOO", "1")
                .env("PMIX_RANK", "3")
                .env("PATH", "/host-only/bin:/usr/sbin:/usr/bin:/sbin:/bin")
                .args(args)
                .run()
                .success()
        };
        let out = cmd(&["--rm", "--env-host", "busybox", "sh", "-c", show]);
        let want =
            "FOO=bar\nLD=\nPATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin\n\
                    SLURM=1\nPMIX=3\nIMAGO=\n";
        assert_eq!(out.stdout(), want, "{out}");
        // Without --env-host only the launcher's variables pass.
        let out = cmd(&["--rm", "busybox", "sh", "-c", show]);
        let want = "FOO=\nLD=\nPATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin\n\
                    SLURM=1\nPMIX=3\nIMAGO=\n";
        assert_eq!(out.stdout(), want, "{out}");
        // -e wins over a passed value; the image's ENV loses to it.
        let out = cmd(&[
            "--rm",
            "--env-host",
            "-e",
            "SLURM_FOO=2",
            "-e",
            "FOO=flag",
            "busybox",
            "sh",
            "-c",
            "echo $SLURM_FOO $FOO",
        ]);
        assert_eq!(out.stdout(), "2 flag\n", "{out}");
    }
}

#[test]
fn hpc_profile_runs_in_the_bound_working_dir_as_the_caller() {
    for u in users() {
        let env = env_for(u);
        let (uid, _) = ids(&env);
        let work = env.mkdir("work");
        let host_name = std::fs::read_to_string("/proc/sys/kernel/hostname").unwrap();
        let script = format!(
            "pwd; id -u; hostname; touch made-here; echo $SLURM_STEP_ID; \
             test -e /proc/{}/stat && echo host-pids",
            std::process::id()
        );
        let mut c = env
            .cmd("irun")
            .env("SLURM_STEP_ID", "7")
            .args(["--rm", "--hpc", "busybox", "sh", "-c", &script]);
        c.command().current_dir(&work);
        let out = c.run().success();
        let want = format!(
            "{}\n{uid}\n{}\n7\nhost-pids\n",
            work.display(),
            host_name.trim()
        );
        assert_eq!(out.stdout(), want, "{out}");
        let m = std::fs::metadata(work.join("made-here")).unwrap();
        assert_eq!(m.uid(), uid, "[{}] made in the bound cwd", u.name());
        // A piece given alone wins over the profile.
        let mut c = env
            .cmd("irun")
            .args([
                "--rm", "--hpc", "--pid", "private", "-w", "/", "busybox", "sh", "-c",
            ])
            .arg("pwd; echo $$");
        c.command().current_dir(&work);
        let out = c.run().success();
        assert_eq!(out.stdout(), "/\n2\n", "the init is pid 1: {out}");
        // Detached, and joined by `ictr exec` (no pid 1 of its own to check it by).
        let id = irun(&env, &["-d", "--hpc", "busybox", "sleep", "60"]).success();
        let id = id.stdout().trim().to_string();
        let out = env
            .cmd("ictr")
            .args(["exec", &id, "id", "-u"])
            .run()
            .success();
        assert_eq!(out.stdout(), format!("{uid}\n"), "{out}");
        env.cmd("ictr")
            .args(["stop", "-t", "1", &id])
            .run()
            .success();
        env.cmd("ictr").args(["rm", &id]).run().success();
        // --bind-home alone: HOME bound at its own path and set.
        let home = env.home();
        let out = irun(
            &env,
            &[
                "--rm",
                "--bind-home",
                "busybox",
                "sh",
                "-c",
                "echo $HOME; touch $HOME/h",
            ],
        )
        .success();
        assert_eq!(out.stdout(), format!("{}\n", home.display()), "{out}");
        assert!(home.join("h").exists(), "[{}] --bind-home", u.name());
    }
}

/// A static test program: `hold` prints its pid and the address of a secret, then waits
/// (at most 30 s) until `/t/stop` exists; `read PID ADDR` reads the secret with
/// process_vm_readv (MPI's CMA); `numa` calls get_mempolicy.
const CMA_C: &str = r#"
#define _GNU_SOURCE
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <sys/uio.h>
#include <unistd.h>
static char secret[16] = "imago-cma-ok";
int main(int argc, char **argv) {
  if (argc > 1 && !strcmp(argv[1], "hold")) {
    printf("%d %p\n", getpid(), (void *)secret);
    fflush(stdout);
    for (int i = 0; i < 600 && access("/t/stop", F_OK) != 0; i++) usleep(50000);
    return 0;
  }
  if (argc > 3 && !strcmp(argv[1], "read")) {
    char buf[16] = {0};
    struct iovec l = {buf, 12}, r = {(void *)strtoull(argv[3], 0, 16), 12};
    if (process_vm_readv(atoi(argv[2]), &l, 1, &r, 1, 0) < 0) {
      printf("error %s\n", strerror(errno));
      return 0;
    }
    printf("read %s\n", buf);
    return 0;
  }
  if (argc > 1 && !strcmp(argv[1], "numa")) {
    int mode = 0;
    long r = syscall(SYS_get_mempolicy, &mode, NULL, 0UL, NULL, 0UL);
    printf(r == 0 ? "numa ok\n" : "numa %s\n", strerror(errno));
    return 0;
  }
  return 2;
}
"#;

/// The test program, built static into `env`'s dir `t` (bound on /t); `None` (said as a
/// skip) without a C compiler.
fn cma_program(env: &Env) -> Option<std::path::PathBuf> {
    let dir = env.mkdir("t");
    let bin = imago_it::static_c_program(&dir, "cma", CMA_C, "the CMA and NUMA checks")?;
    env.give(&bin);
    Some(dir)
}

/// Start `c` (an irun of `/t/cma hold`) with its stdout and stderr piped; returns it
/// once it printed its first line (`PID ADDR`), and that line.
fn start_holder(mut c: imago_it::Cmd) -> (std::process::Child, String) {
    use std::io::BufRead;
    let mut child = c
        .command()
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut line = String::new();
    std::io::BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    (child, line)
}

#[test]
fn hpc_ranks_share_one_user_namespace_so_cma_works() {
    for u in users() {
        let env = env_for(u);
        let Some(dir) = cma_program(&env) else { return };
        let t = format!("{}:/t", dir.display());
        let holder = env
            .cmd("irun")
            .args(["--rm", "--hpc", "-v", &t, "busybox", "/t/cma", "hold"]);
        let (child, line) = start_holder(holder);
        let (pid, addr) = line.trim().split_once(' ').unwrap_or(("", ""));
        let read = |args: &[&str]| {
            let mut all = vec!["--rm"];
            all.extend_from_slice(args);
            all.extend(["-v", &t, "busybox", "/t/cma", "read", pid, addr]);
            irun(&env, &all).success().stdout()
        };
        // Two separate irun processes, one user namespace: the same uid may read.
        assert_eq!(
            read(&["--hpc"]),
            "read imago-cma-ok\n",
            "[{}] {line}",
            u.name()
        );
        // Each in its own user namespace the kernel refuses, same uid or not.
        let own = read(&["--userns", "keep-id", "--pid", "host", "--network", "none"]);
        assert_eq!(own, "error Operation not permitted\n", "[{}]", u.name());
        std::fs::write(dir.join("stop"), b"").unwrap();
        let held = child.wait_with_output().unwrap();
        let said = String::from_utf8_lossy(&held.stderr);
        assert!(held.status.success(), "[{}] holder: {said}", u.name());
        std::fs::remove_file(dir.join("stop")).unwrap();
        // NUMA calls: docker's rule, CAP_SYS_NICE in the set (--hpc adds it).
        let numa = |args: &[&str]| {
            let mut all = vec!["--rm"];
            all.extend_from_slice(args);
            all.extend(["-v", &t, "busybox", "/t/cma", "numa"]);
            irun(&env, &all).success().stdout()
        };
        assert_eq!(
            numa(&[]),
            "numa Operation not permitted\n",
            "[{}]",
            u.name()
        );
        assert_eq!(numa(&["--hpc"]), "numa ok\n", "[{}]", u.name());
        assert_eq!(
            numa(&["--cap-add", "SYS_NICE"]),
            "numa ok\n",
            "[{}]",
            u.name()
        );
    }
}

#[test]
fn a_container_without_the_rendezvous_turns_open_mpis_single_copy_off() {
    let show = "echo v=$OMPI_MCA_btl_vader_single_copy_mechanism";
    let said_set = "OMPI_MCA_btl_vader_single_copy_mechanism=none is set";
    for u in users() {
        let env = env_for(u);
        // A runtime dir whose `userns` is a file: no rendezvous can be made there.
        let run = env.runtime_dir();
        env.mkdir("run/imago");
        env.write("run/imago/userns", b"");
        let hpc = |args: &[&str], host_value: Option<&str>| {
            let mut c = env.cmd("irun").env("XDG_RUNTIME_DIR", &run);
            if let Some(v) = host_value {
                c = c.env("OMPI_MCA_btl_vader_single_copy_mechanism", v);
            }
            c.args(["--rm", "--hpc"])
                .args(args)
                .args(["busybox", "sh", "-c", show])
                .run()
                .success()
        };
        let out = hpc(&[], None);
        assert_eq!(out.stdout(), "v=none\n", "{out}");
        assert_eq!(out.stderr().matches(said_set).count(), 1, "{out}");
        assert!(out.stderr().contains("no usable runtime dir"), "{out}");
        // The user's own value stays: -e, or the launcher's (mpirun --mca) passed by
        // default.
        let flag = hpc(
            &["-e", "OMPI_MCA_btl_vader_single_copy_mechanism=cma"],
            None,
        );
        let passed = hpc(&[], Some("cma"));
        for out in [flag, passed] {
            assert_eq!(out.stdout(), "v=cma\n", "{out}");
            assert!(out.stderr().contains("=cma is kept as set"), "{out}");
        }
        // In the shared namespace nothing is set or said.
        std::fs::remove_file(run.join("imago/userns")).unwrap();
        let out = hpc(&[], None);
        assert_eq!(out.stdout(), "v=\n", "{out}");
        assert!(!out.stderr().contains("single copy"), "{out}");
        if u == User::NoSub {
            // The single mapping is its only mapping: no other maps to meet.
            continue;
        }
        // A running member of other maps (here: the usual mapping, then the single
        // one forced, from a store of its own as a store keeps one ownership mode): not
        // alone, as the next containers of the forced maps would join this one; nothing
        // set, one warning. Both find the same rendezvous: no XDG_RUNTIME_DIR, the
        // user's node-local dir.
        let holder = irun(&env, &["-d", "--hpc", "busybox", "sleep", "60"]).success();
        let id = holder.stdout().trim().to_string();
        let single = env_for(u);
        let out = single
            .cmd("irun")
            .env("IMAGO_IDMAP", "single")
            .args(["--rm", "--hpc", "busybox", "sh", "-c", show])
            .run();
        env.cmd("ictr").args(["rm", "-f", &id]).run().success();
        let out = out.success();
        assert_eq!(out.stdout(), "v=\n", "{out}");
        assert!(out.stderr().contains("other id maps"), "{out}");
    }
}

#[test]
fn hpc_containers_share_one_user_namespace_under_the_fuse_driver() {
    // Both containers' roots are served by the FUSE overlay, each by a server process
    // of its own irun that joins the container's user namespace: for the second one,
    // the namespace the first one made.
    for u in users() {
        let env = env_for(u);
        let Some(dir) = cma_program(&env) else { return };
        let t = format!("{}:/t", dir.display());
        let fuse = |args: &[&str]| {
            env.cmd("irun")
                .env("IMAGO_STORAGE_DRIVER", "fuse")
                .args(["--rm", "--hpc", "-v", &t])
                .args(args)
        };
        let (child, line) = start_holder(fuse(&["busybox", "/t/cma", "hold"]));
        let (pid, addr) = line.trim().split_once(' ').unwrap_or(("", ""));
        let script = format!(
            "awk '$5 == \"/\" {{ for (i = 7; i < NF; i++) if ($i == \"-\") print $(i + 1) }}' \
             /proc/self/mountinfo; /t/cma read {pid} {addr}"
        );
        let out = fuse(&["busybox", "sh", "-c", &script]).run();
        std::fs::write(dir.join("stop"), b"").unwrap();
        let held = child.wait_with_output().unwrap();
        assert!(
            held.status.success(),
            "[{}] holder: {line} {}",
            u.name(),
            String::from_utf8_lossy(&held.stderr)
        );
        let out = out.success();
        assert_eq!(
            out.stdout(),
            "fuse.imago-overlay\nread imago-cma-ok\n",
            "[{}] holder said {line}",
            u.name()
        );
    }
}
