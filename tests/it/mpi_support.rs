//! The MPI tests' fixtures: the Open MPI image (scripts/make-mpi-image.sh: mmdebstrap from
//! Debian's mirror, about half a minute, cached across test processes in
//! `$IMAGO_TEST_TMP/imago-mpi-cache` so a machine or CI run makes it once), the
//! ping-pong program (tests/it/data/mpi_pingpong.c) compiled on the host with Debian's
//! mpicc, `mpirun` as a test user under a bounded wait, and the ranks' report lines.
//!
//! Never: fakes an MPI, a rank or the image. Needs openmpi-bin, libopenmpi-dev and
//! mmdebstrap on the host (scripts/setup-host.sh installs them) and Debian's mirror for
//! the first image.

#![allow(clippy::unwrap_used)] // test helpers: a failed setup step is a test failure

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::OnceLock;

use imago_it::{Env, Out, User};

/// The image's name in every test store.
pub const IMAGE: &str = "debian-openmpi:bookworm";

const SOURCE: &str = include_str!("data/mpi_pingpong.c");
const SCRIPT: &str = include_str!("../../scripts/make-mpi-image.sh");

/// The program's message size and round count (SIZE and ROUNDS in the C source).
const SIZE: usize = 8 << 20;
const ROUNDS: u32 = 4;

/// How long one `mpirun` may take before it is killed and the test fails: two ranks
/// finish in about two seconds; a hang (a rank stuck in MPI_Init or in a transfer
/// that never completes) must not hang the suite.
const MPIRUN_LIMIT_SECS: u32 = 120;

/// The cache dir (image tar, script copy, compiled program) and the program in it.
pub struct Mpi {
    dir: PathBuf,
    prog: PathBuf,
}

/// The fixtures, made once per test process; None (after a skip) when the host lacks
/// Open MPI or mmdebstrap.
pub fn mpi() -> Option<&'static Mpi> {
    static MPI: OnceLock<Option<Mpi>> = OnceLock::new();
    MPI.get_or_init(|| {
        for tool in ["mpirun", "mpicc", "mmdebstrap"] {
            if !imago_it::have(tool) {
                imago_it::skip(&format!(
                    "{tool} is not installed (scripts/setup-host.sh: openmpi-bin libopenmpi-dev mmdebstrap)"
                ));
                return None;
            }
        }
        let dir = imago_it::scratch_base().join("imago-mpi-cache");
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o755)).unwrap();
        // Every test user runs the script (to import) and the program: both in the
        // world-readable cache dir; written under another name and renamed, because
        // another test process may be running the current copy.
        let script = dir.join("make-mpi-image.sh");
        replace(&script, SCRIPT.as_bytes(), 0o755);
        let prog = compile(&dir);
        make_image(&dir, &script);
        Some(Mpi { dir, prog })
    })
    .as_ref()
}

/// Write `path` through a temporary file in the same dir and a rename.
fn replace(path: &Path, data: &[u8], mode: u32) {
    let tmp = path.with_extension(format!("tmp{}", std::process::id()));
    std::fs::write(&tmp, data).unwrap();
    std::fs::set_permissions(&tmp, std::fs::Permissions::from_mode(mode)).unwrap();
    std::fs::rename(&tmp, path).unwrap();
}

/// The program built by the host's mpicc, named after its source's digest (a changed
/// source is rebuilt, an unchanged one reused).
fn compile(dir: &Path) -> PathBuf {
    let digest = imago_oci::Digest::of(SOURCE.as_bytes()).to_string();
    let hex = digest.rsplit(':').next().unwrap_or(&digest);
    let prog = dir.join(format!("mpi_pingpong-{}", &hex[..12]));
    if prog.exists() {
        return prog;
    }
    let src = dir.join(format!("mpi_pingpong-{}.c", std::process::id()));
    std::fs::write(&src, SOURCE).unwrap();
    let tmp = prog.with_extension(format!("tmp{}", std::process::id()));
    let out = Command::new("mpicc")
        .args(["-O2", "-Wall", "-Wextra", "-Werror", "-o"])
        .arg(&tmp)
        .arg(&src)
        .output()
        .expect("run mpicc");
    // The source copy was only mpicc's input.
    let _ = std::fs::remove_file(&src);
    assert!(
        out.status.success(),
        "mpicc failed:\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    std::fs::set_permissions(&tmp, std::fs::Permissions::from_mode(0o755)).unwrap();
    std::fs::rename(&tmp, &prog).unwrap();
    prog
}

/// Run the script once as the test process's user so the tar is in the cache (made by
/// mmdebstrap the first time on this machine); its import goes to a store that is
/// thrown away.
fn make_image(dir: &Path, script: &Path) {
    let store = tempfile::Builder::new()
        .prefix("imago-mpi-maker-")
        .tempdir_in(imago_it::scratch_base())
        .unwrap();
    let out = Command::new(script)
        .arg("--cache")
        .arg(dir)
        .env_clear()
        .env("PATH", script_path())
        .env("HOME", store.path())
        .env("TMPDIR", store.path())
        .env("IMAGO_ROOT", store.path().join("store"))
        .stdin(Stdio::null())
        .output()
        .expect("run make-mpi-image.sh");
    assert!(
        out.status.success(),
        "make-mpi-image.sh failed ({}):\n{}\n{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// PATH for the image script: our binaries first.
fn script_path() -> String {
    format!(
        "{}:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
        imago_it::bin_dir().display()
    )
}

impl Mpi {
    /// A user's environment with the image in its store (imported from the cache by the
    /// script, as a user would) and the program in its scratch dir, which is where
    /// `mpirun` starts and so the directory `--hpc` binds. Returns the program's path.
    pub fn env(&self, user: User) -> (Env, PathBuf) {
        let env = Env::new(user);
        let out = env
            .cmd_path(self.dir.join("make-mpi-image.sh"))
            .env("PATH", script_path())
            .arg("--cache")
            .arg(&self.dir)
            .ok();
        assert!(
            out.stderr().contains("cached"),
            "imported from the cache: {out}"
        );
        let prog = env.path("mpi_pingpong");
        std::fs::copy(&self.prog, &prog).unwrap();
        env.give(&prog);
        (env, prog)
    }
}

/// `mpirun -n 2 --oversubscribe MPIRUN_ARGS PROGRAM...` as `env`'s user; a run still
/// going after [`MPIRUN_LIMIT_SECS`] fails the test: `timeout` sends mpirun SIGTERM,
/// on which it ends the ranks it started (irun hands the signal to the container), and
/// SIGKILL 10 s later. Root needs `--allow-run-as-root`; nothing else differs between
/// the users.
pub fn mpirun(env: &Env, mpirun_args: &[&str], program: &[&str]) -> Out {
    let mut c = env
        .cmd_path("timeout")
        .args(["-k", "10", &MPIRUN_LIMIT_SECS.to_string(), "mpirun"])
        .args(["-n", "2", "--oversubscribe"]);
    // The harness's storage-driver passes reach irun through mpirun's environment.
    if let Some(d) = std::env::var_os("IMAGO_TEST_STORAGE_DRIVER") {
        c = c.env("IMAGO_STORAGE_DRIVER", d);
    }
    if env.user == User::Root {
        c = c.arg("--allow-run-as-root");
    }
    // Open MPI 4.1 makes its session dir `$TMPDIR/ompi.HOST.UID` racily: two mpiruns of
    // one user starting at once (parallel tests) can fail with "File exists". Each test
    // gets its own TMPDIR, which `--hpc` binds into the ranks' containers.
    c = c.env("TMPDIR", env.path(""));
    let out = c.args(mpirun_args).args(program).run();
    assert_ne!(
        out.code(),
        Some(124),
        "mpirun was still running after {MPIRUN_LIMIT_SECS} s and was killed. Two ranks in \
         different user namespaces hang in Open MPI 4.1's shared-memory transport unless \
         btl_vader_single_copy_mechanism=none (docs/hpc.md, MPI): {out}"
    );
    out
}

/// One rank's report line (see the C source).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rank {
    pub rank: u32,
    pub pid: u32,
    pub peer_pid: u32,
    /// Whether the rank could read its peer's memory with process_vm_readv: "ok" or
    /// an errno name.
    pub cma: String,
    /// Open MPI's btl_vader_single_copy_mechanism after MPI_Init: "cma" or "none".
    pub single_copy: String,
    pub checksum: String,
}

/// The ranks' lines in `out`'s stdout, sorted by rank.
pub fn ranks(out: &Out) -> Vec<Rank> {
    let mut v: Vec<Rank> = out
        .stdout()
        .lines()
        .filter(|l| l.starts_with("rank="))
        .map(|l| {
            let field = |k: &str| {
                l.split_whitespace()
                    .find_map(|f| f.strip_prefix(k)?.strip_prefix('='))
                    .unwrap_or_else(|| panic!("no {k}= in {l:?}: {out}"))
                    .to_owned()
            };
            let num = |k: &str| {
                field(k)
                    .parse()
                    .unwrap_or_else(|e| panic!("{k} in {l:?}: {e}: {out}"))
            };
            Rank {
                rank: num("rank"),
                pid: num("pid"),
                peer_pid: num("peer_pid"),
                cma: field("cma"),
                single_copy: field("single_copy"),
                checksum: field("checksum"),
            }
        })
        .collect();
    v.sort_by_key(|r| r.rank);
    v
}

/// The checksums rank 0 and rank 1 must print, computed here from the program's rules:
/// rank 0 ends with every byte raised by 1+2+…+ROUNDS, rank 1 last received it raised by
/// 1+…+(ROUNDS-1). FNV-1a, 64 bits, as 16 hex digits.
pub fn expected_checksums() -> [String; 2] {
    let total: u32 = (1..=ROUNDS).sum();
    [total, total - ROUNDS].map(|added| {
        let mut h: u64 = 0xcbf2_9ce4_8422_2325;
        for i in 0..SIZE {
            let byte = (i as u64 * 31 + 7 + u64::from(added)) & 0xff;
            h ^= byte;
            h = h.wrapping_mul(0x0100_0000_01b3);
        }
        format!("{h:016x}")
    })
}

/// Assert that both ranks ran, talked and moved the data intact, and return their lines.
pub fn two_good_ranks(out: &Out) -> Vec<Rank> {
    assert_eq!(out.code(), Some(0), "mpirun succeeded: {out}");
    let ranks = ranks(out);
    let [c0, c1] = expected_checksums();
    assert_eq!(
        ranks.iter().map(|r| r.rank).collect::<Vec<_>>(),
        [0, 1],
        "both ranks reported: {out}"
    );
    assert_eq!(ranks[0].checksum, c0, "rank 0's data: {out}");
    assert_eq!(ranks[1].checksum, c1, "rank 1's data: {out}");
    assert_eq!(
        (ranks[0].peer_pid, ranks[1].peer_pid),
        (ranks[1].pid, ranks[0].pid),
        "each rank knows the other's pid: {out}"
    );
    ranks
}
