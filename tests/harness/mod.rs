//! The integration-test harness: runs imago's built binaries the way users do, as root
//! and as the unprivileged test users, each with a store of its own in a scratch dir.
//!
//! - Users: `root` (when the tests run as root), `imago-sub` (has an /etc/subuid range)
//!   and `imago-nosub` (has none). `scripts/test.sh` creates them.
//! - Skips: [`skip`] is for a host that lacks something (a tool, a user, a kernel
//!   feature). It prints loudly, and with `IMAGO_TEST_STRICT=1` (CI) it fails the test:
//!   a skip is a pass that checked nothing. [`inherent_skip`] is for the few cases that
//!   cannot apply to a user at all (a user without a subuid range cannot RUN as uid 33);
//!   they print and are listed in `$IMAGO_SKIP_LOG` (scripts/test.sh prints the list).
//! - Binaries are copied once per test process to a world-readable temp dir, because
//!   the checkout may sit where the test users cannot enter.
//! - Scratch space: `$IMAGO_TEST_TMP` (scripts/test.sh mounts a tmpfs there; the root
//!   ext4 of our VMs slows down at small-file writes), else the system temp dir.
//! - `$IMAGO_TEST_STORAGE_DRIVER` (`fuse`, `copy`) reaches our programs as
//!   `IMAGO_STORAGE_DRIVER`: scripts/test.sh runs the build and run tests once per driver.
//!
//! Never: mocks a binary, a namespace or a registry.

#![allow(clippy::print_stderr)]

use std::ffi::OsStr;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

/// Who runs a command.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum User {
    /// uid 0 (only when the tests themselves run as root).
    Root,
    /// An unprivileged user with a subordinate id range.
    Sub,
    /// An unprivileged user without one (HPC style).
    NoSub,
    /// Whoever runs the tests, when that is not root (no user switching possible).
    Current,
}

impl User {
    pub fn name(self) -> &'static str {
        match self {
            User::Root => "root",
            User::Sub => "imago-sub",
            User::NoSub => "imago-nosub",
            User::Current => "current-user",
        }
    }

    /// uid and gid from /etc/passwd, if the user exists.
    pub fn ids(self) -> Option<(u32, u32)> {
        if self == User::Current {
            // SAFETY: getuid/getgid have no preconditions and cannot fail.
            #[allow(unsafe_code)]
            return Some(unsafe { (libc::getuid(), libc::getgid()) });
        }
        let passwd = std::fs::read_to_string("/etc/passwd").ok()?;
        passwd.lines().find_map(|l| {
            let f: Vec<&str> = l.split(':').collect();
            (f.len() > 3 && f[0] == self.name())
                .then(|| Some((f[2].parse().ok()?, f[3].parse().ok()?)))
                .flatten()
        })
    }
}

/// True when the test process runs as root.
pub fn running_as_root() -> bool {
    // SAFETY: geteuid has no preconditions and cannot fail.
    #[allow(unsafe_code)]
    unsafe {
        libc::geteuid() == 0
    }
}

/// The users every integration test runs as: root and both test users when we are root
/// and they exist; otherwise only ourselves. Prints why a user is skipped.
pub fn users() -> Vec<User> {
    if !running_as_root() {
        skip(
            "not root: only the current user runs; run scripts/test.sh as root for the full matrix",
        );
        return vec![User::Current];
    }
    let mut v = vec![User::Root];
    for u in [User::Sub, User::NoSub] {
        if u.ids().is_some() {
            v.push(u);
        } else {
            skip(&format!(
                "test user {} does not exist; scripts/test.sh creates it",
                u.name()
            ));
        }
    }
    v
}

/// Say loudly that a part of a test did not run because this host lacks something.
/// With `IMAGO_TEST_STRICT=1` (CI) this fails the test instead.
pub fn skip(reason: &str) {
    if strict() {
        panic!("SKIP is a failure under IMAGO_TEST_STRICT=1: {reason}");
    }
    say(&format!("SKIP: {reason}"));
}

/// Say that a part of a test cannot apply (not a host problem): printed, and listed in
/// `$IMAGO_SKIP_LOG` for scripts/test.sh's summary. Never fails, also not in CI.
pub fn inherent_skip(reason: &str) {
    use std::io::Write;
    say(&format!("SKIP (inherent): {reason}"));
    if let Some(log) = std::env::var_os("IMAGO_SKIP_LOG") {
        let appended = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(log)
            .and_then(|mut f| writeln!(f, "{reason}"));
        if let Err(e) = appended {
            say(&format!("(could not add it to $IMAGO_SKIP_LOG: {e})"));
        }
    }
}

/// Is `IMAGO_TEST_STRICT=1` set (skips caused by the host fail)?
pub fn strict() -> bool {
    std::env::var_os("IMAGO_TEST_STRICT").is_some_and(|v| v == "1")
}

/// A line on the real stderr: libtest captures `eprintln!` of passing tests, which
/// would hide it.
fn say(line: &str) {
    use std::io::Write;
    // Ignoring a failed write: stderr is the last channel there is.
    let _ = writeln!(std::io::stderr().lock(), "{line}");
}

/// The directory of the built binaries (target/<profile>), found from this test binary.
fn build_dir() -> PathBuf {
    let exe = std::env::current_exe().expect("current_exe");
    // target/<profile>/deps/it-<hash>
    exe.parent()
        .and_then(Path::parent)
        .expect("test binary under target/<profile>/deps")
        .to_path_buf()
}

/// A world-readable copy of every built `i*` binary, made once per test process.
pub fn bin_dir() -> &'static Path {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(|| {
        remove_stale_bin_dirs();
        let dir = scratch_base().join(format!("imago-bins-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("create bin dir");
        std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o755)).expect("chmod");
        for entry in std::fs::read_dir(build_dir()).expect("read target dir") {
            let entry = entry.expect("dir entry");
            let name = entry.file_name();
            let name = name.to_string_lossy();
            let is_ours = name.starts_with('i') && !name.contains('.') && !name.contains('-');
            if is_ours && entry.file_type().map(|t| t.is_file()).unwrap_or(false) {
                let to = dir.join(&*name);
                std::fs::copy(entry.path(), &to).expect("copy binary");
                std::fs::set_permissions(&to, std::fs::Permissions::from_mode(0o755))
                    .expect("chmod");
            }
        }
        dir
    })
}

/// Statics are never dropped, so earlier test processes leave their `imago-bins-<pid>`
/// behind: remove those whose process is gone.
fn remove_stale_bin_dirs() {
    let Ok(entries) = std::fs::read_dir(scratch_base()) else {
        return;
    };
    for e in entries.flatten() {
        let name = e.file_name();
        let Some(pid) = name.to_str().and_then(|n| n.strip_prefix("imago-bins-")) else {
            continue;
        };
        if !Path::new("/proc").join(pid).exists() {
            // Best effort: another test process may be removing it at the same time.
            let _ = std::fs::remove_dir_all(e.path());
        }
    }
}

/// Whether a program is installed (on PATH, or in /usr/bin or /usr/sbin, which
/// runuser's PATH may lack).
pub fn have(program: &str) -> bool {
    std::env::split_paths(&std::env::var_os("PATH").unwrap_or_default())
        .chain(["/usr/bin".into(), "/usr/sbin".into()])
        .any(|d| d.join(program).is_file())
}

/// Build the C program `source` static, as `dir/name` (its source beside it), with the
/// host's gcc; `None`, said as a skip (a failure in CI), without one. `for_what` names
/// the check that needs it.
pub fn static_c_program(dir: &Path, name: &str, source: &str, for_what: &str) -> Option<PathBuf> {
    if !have("gcc") {
        skip(&format!(
            "gcc missing (build-essential): {for_what} needs it"
        ));
        return None;
    }
    std::fs::create_dir_all(dir).expect("mkdir");
    let src = dir.join(format!("{name}.c"));
    std::fs::write(&src, source).expect("write the C source");
    let bin = dir.join(name);
    let st = Command::new("gcc")
        .args(["-static", "-O1", "-o"])
        .arg(&bin)
        .arg(&src)
        .status()
        .expect("run gcc");
    assert!(st.success(), "gcc -static {name}.c");
    Some(bin)
}

/// Path of one of our binaries in [`bin_dir`]; panics with a clear message when it was
/// not built (run `cargo build --workspace` first, as scripts/test.sh does).
pub fn bin(name: &str) -> PathBuf {
    let p = bin_dir().join(name);
    assert!(
        p.exists(),
        "{name} not built: run `cargo build --workspace` before the tests"
    );
    p
}

/// Wait until `f` holds, polling every 50 ms for at most `secs` seconds (a bound that
/// catches a hang, not a speed check); whether it did.
pub fn eventually(secs: u64, f: impl Fn() -> bool) -> bool {
    let t = Instant::now();
    while t.elapsed() < Duration::from_secs(secs) {
        if f() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    f()
}

/// Where scratch dirs go: `$IMAGO_TEST_TMP`, else the system temp dir.
pub fn scratch_base() -> PathBuf {
    std::env::var_os("IMAGO_TEST_TMP")
        .map(PathBuf::from)
        .unwrap_or_else(std::env::temp_dir)
}

/// The repository root (for scripts/).
pub fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("repo root")
        .to_path_buf()
}

/// A scratch directory owned by `user`, removed on drop.
pub struct Scratch {
    dir: tempfile::TempDir,
}

impl Scratch {
    pub fn new(user: User) -> Self {
        let dir = tempfile::Builder::new()
            .prefix("imago-it-")
            .tempdir_in(scratch_base())
            .expect("tempdir");
        std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755))
            .expect("chmod");
        if user != User::Root && running_as_root() {
            let (uid, gid) = user.ids().expect("test user exists");
            std::os::unix::fs::chown(dir.path(), Some(uid), Some(gid)).expect("chown scratch");
        }
        Self { dir }
    }

    pub fn path(&self) -> &Path {
        self.dir.path()
    }
}

/// One user's environment: a store and a home inside a scratch dir.
pub struct Env {
    pub user: User,
    pub scratch: Scratch,
}

impl Env {
    pub fn new(user: User) -> Self {
        let scratch = Scratch::new(user);
        let env = Self { user, scratch };
        env.mkdir("home");
        let run = env.mkdir("run");
        std::fs::set_permissions(&run, std::fs::Permissions::from_mode(0o700)).expect("chmod");
        env
    }

    /// This user's own runtime dir (0700), the `$XDG_RUNTIME_DIR` of the peers' tools:
    /// without one, skopeo and podman fall back to `/run/containers/UID`, which fails
    /// for everyone once root's podman has made `/run/containers` 0700.
    pub fn runtime_dir(&self) -> PathBuf {
        self.path("run")
    }

    /// The store root (`IMAGO_ROOT`) of this environment.
    pub fn root(&self) -> PathBuf {
        self.scratch.path().join("store")
    }

    pub fn home(&self) -> PathBuf {
        self.scratch.path().join("home")
    }

    /// A path inside the scratch dir.
    pub fn path(&self, rel: &str) -> PathBuf {
        self.scratch.path().join(rel)
    }

    /// Make a directory in the scratch dir, owned by the user.
    pub fn mkdir(&self, rel: &str) -> PathBuf {
        let p = self.path(rel);
        std::fs::create_dir_all(&p).expect("mkdir");
        self.give(&p);
        p
    }

    /// Write a file in the scratch dir, owned by the user.
    pub fn write(&self, rel: &str, data: impl AsRef<[u8]>) -> PathBuf {
        let p = self.path(rel);
        if let Some(parent) = p.parent() {
            std::fs::create_dir_all(parent).expect("mkdir");
        }
        std::fs::write(&p, data).expect("write");
        self.give(&p);
        p
    }

    /// chown a path to the user (no-op for root).
    pub fn give(&self, p: &Path) {
        if self.user != User::Root && running_as_root() {
            let (uid, gid) = self.user.ids().expect("user");
            std::os::unix::fs::lchown(p, Some(uid), Some(gid)).expect("chown");
        }
    }

    /// A command running one of our binaries as this user, with this store.
    pub fn cmd(&self, program: &str) -> Cmd {
        self.cmd_path(bin(program))
    }

    /// A command running any program as this user, with this environment.
    pub fn cmd_path(&self, program: impl AsRef<OsStr>) -> Cmd {
        let mut c = if self.user == User::Root || !running_as_root() {
            Command::new(program.as_ref())
        } else {
            // -m: keep the environment set below; plain runuser would reset HOME, USER,
            // SHELL and LOGNAME to the passwd entry and leak state into the real home.
            let mut c = Command::new("runuser");
            c.args(["-m", "-u", self.user.name(), "--"])
                .arg(program.as_ref());
            c
        };
        c.current_dir(self.scratch.path())
            .env_clear()
            .env(
                "PATH",
                "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
            )
            .env("HOME", self.home())
            .env("USER", self.user.name())
            .env("LANG", "C.UTF-8")
            .env("IMAGO_ROOT", self.root())
            .stdin(Stdio::null());
        if Path::new(program.as_ref()).starts_with(bin_dir()) {
            // scripts/test.sh's storage-driver passes: the same tests on `fuse`, `copy`.
            if let Some(d) = std::env::var_os("IMAGO_TEST_STORAGE_DRIVER") {
                c.env("IMAGO_STORAGE_DRIVER", d);
            }
        } else {
            // A peer's tool (skopeo, podman): a runtime dir and so an auth file of this
            // user's own. imago's programs run without one, as on an HPC login node.
            c.env("XDG_RUNTIME_DIR", self.runtime_dir());
        }
        Cmd {
            inner: c,
            label: format!(
                "[{}] {}",
                self.user.name(),
                program.as_ref().to_string_lossy()
            ),
        }
    }

    /// podman as this user: rootless podman keeps its pause process and state under
    /// `/run/user/UID`, which scripts/setup-host.sh prepares with the user's
    /// containers.conf (cgroupfs, file events).
    pub fn podman(&self) -> Cmd {
        let c = self.cmd_path("podman");
        match self.user {
            User::Root | User::Current => c,
            u => {
                let (uid, _) = u.ids().expect("user");
                c.env("XDG_RUNTIME_DIR", format!("/run/user/{uid}"))
            }
        }
    }

    /// The busybox rootfs tar from scripts/make-busybox-rootfs.sh, readable by the user.
    pub fn busybox_tar(&self) -> PathBuf {
        let out = self.path("busybox-rootfs.tar");
        if !out.exists() {
            let st = Command::new(repo_root().join("scripts/make-busybox-rootfs.sh"))
                .arg(&out)
                .status()
                .expect("run make-busybox-rootfs.sh");
            assert!(st.success(), "make-busybox-rootfs.sh failed");
            self.give(&out);
        }
        out
    }
}

/// A command to run; `run()` returns its output for assertions.
pub struct Cmd {
    inner: Command,
    label: String,
}

impl Cmd {
    pub fn arg(mut self, a: impl AsRef<OsStr>) -> Self {
        self.label.push(' ');
        self.label.push_str(&a.as_ref().to_string_lossy());
        self.inner.arg(a);
        self
    }

    pub fn args<I: IntoIterator<Item = S>, S: AsRef<OsStr>>(mut self, args: I) -> Self {
        for a in args {
            self = self.arg(a);
        }
        self
    }

    pub fn env(mut self, k: &str, v: impl AsRef<OsStr>) -> Self {
        self.inner.env(k, v);
        self
    }

    pub fn stdin(mut self, s: impl Into<Stdio>) -> Self {
        self.inner.stdin(s);
        self
    }

    /// The underlying command, for spawning and killing.
    pub fn command(&mut self) -> &mut Command {
        &mut self.inner
    }

    pub fn run(mut self) -> Out {
        let output = self
            .inner
            .output()
            .unwrap_or_else(|e| panic!("spawn {}: {e}", self.label));
        Out {
            label: self.label,
            output,
        }
    }

    /// Run and assert exit 0; returns the output.
    pub fn ok(self) -> Out {
        self.run().success()
    }
}

/// A finished command.
pub struct Out {
    pub label: String,
    pub output: Output,
}

impl Out {
    pub fn code(&self) -> Option<i32> {
        self.output.status.code()
    }

    pub fn stdout(&self) -> String {
        String::from_utf8_lossy(&self.output.stdout).into_owned()
    }

    pub fn stderr(&self) -> String {
        String::from_utf8_lossy(&self.output.stderr).into_owned()
    }

    /// Panic with both streams unless the command exited 0.
    pub fn success(self) -> Self {
        assert!(self.output.status.success(), "{self}");
        self
    }

    /// Panic unless the command exited with `code`.
    pub fn code_is(self, code: i32) -> Self {
        assert_eq!(self.code(), Some(code), "{self}");
        self
    }

    /// Panic unless the command failed and its stderr contains `needle`.
    pub fn fails_with(self, needle: &str) -> Self {
        assert!(!self.output.status.success(), "expected failure: {self}");
        assert!(
            self.stderr().contains(needle),
            "stderr lacks {needle:?}: {self}"
        );
        self
    }
}

impl std::fmt::Display for Out {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "`{}` exited {:?}\n--- stdout\n{}\n--- stderr\n{}",
            self.label,
            self.output.status,
            self.stdout(),
            self.stderr()
        )
    }
}
