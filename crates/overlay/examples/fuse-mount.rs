//! Mount the FUSE overlay: for benches/overlay.sh and the crate's tests.
//!
//! ```text
//! fuse-mount [--threads N] [--raw] --upper DIR --work DIR [--lower DIR]... MOUNTPOINT [-- CMD...]
//! ```
//! Lowers top first. `--raw` mounts the way a user namespace must (open `/dev/fuse`,
//! `mount("fuse", …, "fd=N,…")`, then `serve_on`), else `imago_overlay::fuse::mount`.
//! With a command: runs it with the overlay mounted, then unmounts and exits with its
//! status. Without: serves until someone unmounts MOUNTPOINT.
//! Plain argument parsing: imago-cli depends on this crate through the runtime.

use std::error::Error;
use std::os::fd::AsRawFd;
use std::path::PathBuf;
use std::process::{Command, ExitCode};

use imago_overlay::fuse::{self, FuseOverlay, MountOptions};
use rustix::fs::{Mode, OFlags};
use rustix::mount::MountFlags;

struct Args {
    threads: usize,
    raw: bool,
    upper: PathBuf,
    work: PathBuf,
    lowers: Vec<PathBuf>,
    target: PathBuf,
    cmd: Vec<String>,
}

fn parse() -> Result<Args, Box<dyn Error>> {
    let mut it = std::env::args().skip(1);
    let (mut threads, mut raw) = (4, false);
    let (mut upper, mut work, mut target) = (None, None, None);
    let mut lowers = Vec::new();
    let mut cmd = Vec::new();
    while let Some(a) = it.next() {
        let mut value = || it.next().ok_or_else(|| format!("{a} needs a value"));
        match a.as_str() {
            "--threads" => threads = value()?.parse()?,
            "--raw" => raw = true,
            "--upper" => upper = Some(PathBuf::from(value()?)),
            "--work" => work = Some(PathBuf::from(value()?)),
            "--lower" => lowers.push(PathBuf::from(value()?)),
            "--" => {
                cmd = it.by_ref().collect();
                break;
            }
            _ if a.starts_with('-') => return Err(format!("unknown flag {a}").into()),
            _ => target = Some(PathBuf::from(a)),
        }
    }
    Ok(Args {
        threads,
        raw,
        upper: upper.ok_or("--upper is required")?,
        work: work.ok_or("--work is required")?,
        lowers,
        target: target.ok_or("MOUNTPOINT is required")?,
        cmd,
    })
}

fn main() -> Result<ExitCode, Box<dyn Error>> {
    let a = parse()?;
    let fs = FuseOverlay::new(&a.lowers, &a.upper, &a.work)?;
    let session = if a.raw {
        // What the sandbox child does inside its user namespace.
        let dev = rustix::fs::open("/dev/fuse", OFlags::RDWR | OFlags::CLOEXEC, Mode::empty())?;
        let data = format!(
            "fd={},rootmode=40000,user_id=0,group_id=0,default_permissions,allow_other",
            dev.as_raw_fd()
        );
        rustix::mount::mount(
            "imago-overlay",
            &a.target,
            "fuse",
            MountFlags::NOSUID | MountFlags::NODEV,
            std::ffi::CString::new(data)?.as_c_str(),
        )?;
        fuse::serve_on(dev, fs, a.threads)?
    } else {
        let opts = MountOptions {
            threads: a.threads,
            ..MountOptions::default()
        };
        fuse::mount(&a.target, fs, &opts)?
    };
    let Some((prog, args)) = a.cmd.split_first() else {
        session.join()?;
        return Ok(ExitCode::SUCCESS);
    };
    let status = Command::new(prog).args(args).status();
    if a.raw {
        rustix::mount::unmount(&a.target, rustix::mount::UnmountFlags::empty())?;
        session.join()?;
    } else {
        session.unmount()?;
    }
    let code = status?.code().unwrap_or(125);
    Ok(ExitCode::from(u8::try_from(code).unwrap_or(125)))
}
