//! The reliability campaign's tools: a seeded random source (the seed is printed, so a
//! failing run can be replayed with `IMAGO_CAMPAIGN_SEED`), SIGKILL of a whole process
//! group at a chosen moment, an independent check of a store (fsck, plus our own walk of
//! index.json and the blobs), and the tally each scenario prints as one line:
//! `CAMPAIGN scenario=<name> runs=<n> failures=<n> lost=<n>` (lost = corrupt stores +
//! lost tags + bad blobs), which scripts/reliability.sh collects into its table.

use std::collections::BTreeSet;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Stdio};
use std::time::{Duration, Instant};

use imago_it::{Cmd, Env, Out};

/// How many runs a scenario makes: `$IMAGO_CAMPAIGN_RUNS` (the crash count per command;
/// other scenarios scale it by `share`), else `default` (small, for CI).
pub fn runs(default: usize, share: f64) -> usize {
    match std::env::var("IMAGO_CAMPAIGN_RUNS")
        .ok()
        .and_then(|v| v.trim().parse::<usize>().ok())
    {
        // Rounding up keeps at least one run.
        Some(n) => ((n as f64) * share).ceil().max(1.0) as usize,
        None => default,
    }
}

/// A small deterministic random source (no rand crate), seeded from
/// `$IMAGO_CAMPAIGN_SEED` or the clock; the seed is printed with the scenario.
pub struct Rng(u64);

impl Rng {
    pub fn new(scenario: &str) -> Rng {
        let seed = std::env::var("IMAGO_CAMPAIGN_SEED")
            .ok()
            .and_then(|s| s.trim().parse().ok())
            .unwrap_or_else(|| {
                std::time::SystemTime::now()
                    .duration_since(std::time::UNIX_EPOCH)
                    .map(|d| d.as_nanos() as u64)
                    .unwrap_or(0x5eed)
                    ^ u64::from(std::process::id())
            });
        say(&format!("CAMPAIGN-SEED scenario={scenario} seed={seed}"));
        Rng(seed)
    }

    /// A source with a fixed seed (content that differs from run to run, not random
    /// moments).
    pub fn seeded(seed: u64) -> Rng {
        Rng(seed)
    }

    /// A number in `0..n` (0 when `n` is 0).
    pub fn below(&mut self, n: u64) -> u64 {
        self.0 = self
            .0
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        if n == 0 {
            0
        } else {
            (self.0 >> 33) % n
        }
    }

    /// `len` pseudo-random bytes (incompressible enough for gzip).
    pub fn bytes(&mut self, len: usize) -> Vec<u8> {
        let mut v = Vec::with_capacity(len + 8);
        while v.len() < len {
            self.below(1);
            v.extend_from_slice(&self.0.to_le_bytes());
        }
        v.truncate(len);
        v
    }
}

/// A line on the real stderr (libtest captures `eprintln!` of passing tests).
pub fn say(line: &str) {
    use std::io::Write;
    // Ignoring a failed write: stderr is the last channel there is.
    let _ = writeln!(std::io::stderr().lock(), "{line}");
}

/// One scenario's count of runs, failures and lost data; prints the CAMPAIGN line and
/// fails the test when anything failed or was lost.
pub struct Tally {
    name: String,
    pub runs: usize,
    pub failures: usize,
    pub lost: usize,
    /// Kills that landed while the command still ran (the others came after its end).
    pub mid_run: usize,
    notes: Vec<String>,
    finished: bool,
}

impl Drop for Tally {
    /// A scenario that stopped half-way (a panic in its set-up) still reports, with one
    /// failure more, so the table shows it.
    fn drop(&mut self) {
        if !self.finished {
            self.failures += 1;
            say(&self.line());
        }
    }
}

impl Tally {
    pub fn new(name: &str) -> Tally {
        Tally {
            name: name.to_owned(),
            runs: 0,
            failures: 0,
            lost: 0,
            mid_run: 0,
            notes: Vec::new(),
            finished: false,
        }
    }

    /// A failed run (the rerun failed, a message was unclear, debris stayed).
    pub fn fail(&mut self, what: String) {
        say(&format!("CAMPAIGN-FAIL scenario={} {what}", self.name));
        self.failures += 1;
        self.notes.push(what);
    }

    /// Data lost: a corrupt store, `n` lost tags or bad blobs. Also a failed run.
    pub fn lose(&mut self, n: usize, what: String) {
        self.lost += n;
        self.fail(what);
    }

    fn line(&self) -> String {
        format!(
            "CAMPAIGN scenario={} runs={} failures={} lost={}",
            self.name, self.runs, self.failures, self.lost
        )
    }

    /// Print the CAMPAIGN line, then fail on any failure.
    pub fn finish(mut self) {
        self.finished = true;
        say(&self.line());
        if self.name.starts_with("crash-") {
            say(&format!(
                "campaign {}: {} of {} kills landed while the command ran",
                self.name, self.mid_run, self.runs
            ));
        }
        assert!(
            self.failures == 0 && self.lost == 0,
            "{}: {} failures, {} lost:\n{}",
            self.name,
            self.failures,
            self.lost,
            self.notes.join("\n")
        );
    }
}

/// Spawn `cmd` in a process group of its own, output discarded.
pub fn spawn(mut cmd: Cmd) -> Child {
    cmd.command()
        .process_group(0)
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    cmd.command().spawn().expect("spawn")
}

/// SIGKILL `child`'s whole group (runuser and the program under it) and wait until
/// nothing of it runs. Returns whether the program was still running.
pub fn kill_group(child: &mut Child) -> bool {
    let running = child.try_wait().expect("try_wait").is_none();
    let pgid = i32::try_from(child.id()).expect("pid");
    // SAFETY: kill(2) on a process group we created; no memory is involved.
    #[allow(unsafe_code)]
    unsafe {
        libc::kill(-pgid, libc::SIGKILL);
    }
    // Its status is of no interest: it was killed, or had ended.
    let _ = child.wait();
    let deadline = Instant::now() + Duration::from_secs(10);
    while group_running(pgid) && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(5));
    }
    running
}

/// SIGKILL one process by pid.
pub fn kill_pid(pid: i64) {
    if let Ok(p) = i32::try_from(pid) {
        // SAFETY: kill(2) of a pid the test read from a container record.
        #[allow(unsafe_code)]
        unsafe {
            libc::kill(p, libc::SIGKILL);
        }
    }
}

/// Whether any process of group `pgid` is alive and not a zombie (from /proc).
pub fn group_running(pgid: i32) -> bool {
    let Ok(rd) = std::fs::read_dir("/proc") else {
        return false;
    };
    rd.flatten().any(|e| {
        let Ok(stat) = std::fs::read_to_string(e.path().join("stat")) else {
            return false;
        };
        // pid (comm) state ppid pgrp ...
        let Some((_, rest)) = stat.rsplit_once(") ") else {
            return false;
        };
        let f: Vec<&str> = rest.split_whitespace().collect();
        f.len() > 2 && f[0] != "Z" && f[0] != "X" && f[2] == pgid.to_string()
    })
}

/// Run `cmd` to its end; its output and how long it took.
pub fn timed(cmd: Cmd) -> (Out, Duration) {
    let t = Instant::now();
    let out = cmd.run();
    (out, t.elapsed())
}

/// Spawn `cmd`, kill it `delay` later; true when it still ran then.
pub fn kill_after(cmd: Cmd, delay: Duration) -> bool {
    let mut child = spawn(cmd);
    std::thread::sleep(delay);
    kill_group(&mut child)
}

/// The names (`org.opencontainers.image.ref.name`) index.json gives, read directly.
pub fn names(root: &Path) -> BTreeSet<String> {
    let Ok(bytes) = std::fs::read(root.join("index.json")) else {
        return BTreeSet::new();
    };
    let v: serde_json::Value = serde_json::from_slice(&bytes).unwrap_or_default();
    v["manifests"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|m| {
            m.pointer("/annotations/org.opencontainers.image.ref.name")?
                .as_str()
                .map(str::to_owned)
        })
        .collect()
}

/// What is wrong with the store at `root`, as (problems, how many count as lost data).
/// `iimage fsck` must be clean, and, independently of its code: every blob hashes to its
/// name (no half-written blob is visible) and every index entry's manifest, config and
/// layers are present (no name points at a missing blob).
pub fn store_problems(env: &Env, root: &Path) -> (Vec<String>, usize) {
    let mut problems = Vec::new();
    let mut lost = 0;
    let fsck = env
        .cmd("iimage")
        .args(["fsck", "--format", "json"])
        .env("IMAGO_ROOT", root)
        .run();
    let clean = fsck.output.status.success()
        && serde_json::from_str::<serde_json::Value>(&fsck.stdout())
            .ok()
            .and_then(|v| v["problems"].as_array().map(Vec::is_empty))
            .unwrap_or(false);
    if !clean {
        problems.push(format!("fsck not clean: {fsck}"));
        lost += 1;
    }
    let blobs = root.join("blobs/sha256");
    for e in std::fs::read_dir(&blobs).into_iter().flatten().flatten() {
        let name = e.file_name().to_string_lossy().into_owned();
        let data = std::fs::read(e.path()).unwrap_or_default();
        if imago_oci::Digest::of(&data).hex() != name {
            problems.push(format!("blob {name} does not hash to its name"));
            lost += 1;
        }
    }
    let index: serde_json::Value = std::fs::read(root.join("index.json"))
        .ok()
        .and_then(|b| serde_json::from_slice(&b).ok())
        .unwrap_or_default();
    for m in index["manifests"].as_array().into_iter().flatten() {
        let Some(d) = m["digest"].as_str() else {
            continue;
        };
        let Some(manifest) = read_json(&blobs, d) else {
            problems.push(format!("index entry {m} names a missing manifest"));
            lost += 1;
            continue;
        };
        let mut wanted: Vec<&str> = manifest["layers"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|l| l["digest"].as_str())
            .collect();
        wanted.extend(manifest.pointer("/config/digest").and_then(|c| c.as_str()));
        for w in wanted {
            if !blob_file(&blobs, w).is_file() {
                problems.push(format!("image {d} lacks blob {w}"));
                lost += 1;
            }
        }
    }
    (problems, lost)
}

fn blob_file(blobs: &Path, digest: &str) -> PathBuf {
    blobs.join(digest.trim_start_matches("sha256:"))
}

fn read_json(blobs: &Path, digest: &str) -> Option<serde_json::Value> {
    serde_json::from_slice(&std::fs::read(blob_file(blobs, digest)).ok()?).ok()
}

/// Temp entries `iimage fsck` counts as debris (of processes that are gone).
pub fn temp_debris(env: &Env, root: &Path) -> u64 {
    let out = env
        .cmd("iimage")
        .args(["fsck", "--format", "json"])
        .env("IMAGO_ROOT", root)
        .run();
    serde_json::from_str::<serde_json::Value>(&out.stdout())
        .ok()
        .and_then(|v| v["temp_debris"].as_u64())
        .unwrap_or(u64::MAX)
}

/// Check the store after a kill: problems are lost data; names in `expected` must all
/// still be there (each one missing is a lost tag).
pub fn check_after(
    tally: &mut Tally,
    env: &Env,
    root: &Path,
    expected: &BTreeSet<String>,
    what: &str,
) {
    let (problems, lost) = store_problems(env, root);
    if !problems.is_empty() {
        tally.lose(lost.max(1), format!("{what}: {}", problems.join("; ")));
    }
    let have = names(root);
    let missing: Vec<&String> = expected.difference(&have).collect();
    if !missing.is_empty() {
        tally.lose(missing.len(), format!("{what}: lost tags {missing:?}"));
    }
}

/// A tar of the busybox rootfs plus `random.bin` (`mib` MiB, incompressible): an image
/// big enough that a kill lands inside its transfer, and still runnable.
pub fn big_tar(env: &Env, rng: &mut Rng, mib: usize) -> PathBuf {
    let out = env.path(&format!("big-{mib}.tar"));
    let bb = std::fs::read(env.busybox_tar()).expect("busybox tar");
    let mut b = tar::Builder::new(Vec::new());
    let mut a = tar::Archive::new(&bb[..]);
    for e in a.entries().expect("entries") {
        let mut e = e.expect("entry");
        let mut h = e.header().clone();
        let mut data = Vec::new();
        std::io::Read::read_to_end(&mut e, &mut data).expect("read entry");
        let path = e.path().expect("path").into_owned();
        if h.entry_type().is_hard_link() || h.entry_type().is_symlink() {
            let target = e.link_name().expect("link").expect("target").into_owned();
            b.append_link(&mut h, &path, &target).expect("append link");
        } else {
            b.append_data(&mut h, &path, &data[..]).expect("append");
        }
    }
    let data = rng.bytes(mib << 20);
    let mut h = tar::Header::new_gnu();
    h.set_size(data.len() as u64);
    h.set_mode(0o644);
    h.set_uid(0);
    h.set_gid(0);
    h.set_mtime(1);
    h.set_cksum();
    b.append_data(&mut h, "random.bin", &data[..])
        .expect("append");
    std::fs::write(&out, b.into_inner().expect("tar")).expect("write tar");
    env.give(&out);
    out
}
