//! The notification filter: a second seccomp filter, stacked on the container's main
//! (default) filter, that sends the id, ownership and stat calls to the supervisor
//! (SECCOMP_RET_USER_NOTIF) and lets everything else through.
//!
//! Why a second filter and the main one in its default form: every stacked filter runs
//! and the kernel keeps the answer of highest precedence (KILL > TRAP > ERRNO >
//! USER_NOTIF > TRACE > LOG > ALLOW), so an ERRNO(0) of the no-op fakeroot would win
//! over USER_NOTIF and the supervisor would never hear of the call. The main filter's
//! EPERMs (mount, unshare, …) still win over this one, as they should.
//! Also the classic-BPF building blocks ([`stmt`], [`jump`] and their opcodes), shared
//! with the sandbox's main filter (which depends on this crate).
//! Never: answers a call itself, checks the architecture (the main filter refuses other
//! ABIs before this one matters).

use std::os::fd::OwnedFd;

use nix::errno::Errno;

/// `ld [k]`: load the 32-bit word at offset k of seccomp_data.
pub const BPF_LD_W_ABS: u16 = (libc::BPF_LD | libc::BPF_W | libc::BPF_ABS) as u16;
/// `jeq #k, jt, jf`.
pub const BPF_JEQ_K: u16 = (libc::BPF_JMP | libc::BPF_JEQ | libc::BPF_K) as u16;
/// `jge #k, jt, jf`.
pub const BPF_JGE_K: u16 = (libc::BPF_JMP | libc::BPF_JGE | libc::BPF_K) as u16;
/// `ret #k`.
pub const BPF_RET_K: u16 = (libc::BPF_RET | libc::BPF_K) as u16;
/// SECCOMP_RET_ALLOW.
pub const RET_ALLOW: u32 = 0x7fff_0000;

/// fchmodat2 (Linux 6.6), the same number on x86_64 and aarch64 (the generic table).
pub const SYS_FCHMODAT2: libc::c_long = 452;

/// The calls the supervisor answers: (name, number).
pub fn notified_calls() -> Vec<(&'static str, libc::c_long)> {
    let v: Vec<(&'static str, libc::c_long)> = vec![
        ("setuid", libc::SYS_setuid),
        ("setgid", libc::SYS_setgid),
        ("setreuid", libc::SYS_setreuid),
        ("setregid", libc::SYS_setregid),
        ("setresuid", libc::SYS_setresuid),
        ("setresgid", libc::SYS_setresgid),
        ("setgroups", libc::SYS_setgroups),
        ("getuid", libc::SYS_getuid),
        ("geteuid", libc::SYS_geteuid),
        ("getgid", libc::SYS_getgid),
        ("getegid", libc::SYS_getegid),
        ("getresuid", libc::SYS_getresuid),
        ("getresgid", libc::SYS_getresgid),
        ("getgroups", libc::SYS_getgroups),
        ("fchown", libc::SYS_fchown),
        ("fchownat", libc::SYS_fchownat),
        ("mknodat", libc::SYS_mknodat),
        ("fchmod", libc::SYS_fchmod),
        ("fchmodat", libc::SYS_fchmodat),
        ("fchmodat2", SYS_FCHMODAT2),
        ("fstat", libc::SYS_fstat),
        ("newfstatat", libc::SYS_newfstatat),
        ("statx", libc::SYS_statx),
    ];
    // The path calls without a dir fd: x86_64, ppc64le and s390x keep them (glibc's chown,
    // chmod and mkdir still call them there); the generic table of aarch64 and riscv64 has
    // none, and those are the only other architectures imago builds for.
    #[cfg(not(any(target_arch = "aarch64", target_arch = "riscv64")))]
    let v = [
        v,
        vec![
            ("chown", libc::SYS_chown),
            ("lchown", libc::SYS_lchown),
            ("mknod", libc::SYS_mknod),
            ("chmod", libc::SYS_chmod),
            ("stat", libc::SYS_stat),
            ("lstat", libc::SYS_lstat),
        ],
    ]
    .concat();
    v
}

/// The calls that create a file, notified only when they do (the supervisor gives a
/// process that believes it is another user its new files): (name, number, the index
/// of the flags argument that must hold O_CREAT, or None: always). Who the caller
/// believes it is the filter cannot tell: root's calls are notified too and let run.
pub fn creating_calls() -> Vec<(&'static str, libc::c_long, Option<u32>)> {
    let v: Vec<(&'static str, libc::c_long, Option<u32>)> = vec![
        ("openat", libc::SYS_openat, Some(2)),
        ("mkdirat", libc::SYS_mkdirat, None),
        ("symlinkat", libc::SYS_symlinkat, None),
    ];
    #[cfg(not(any(target_arch = "aarch64", target_arch = "riscv64")))]
    let v = [
        v,
        vec![
            ("open", libc::SYS_open, Some(1)),
            ("creat", libc::SYS_creat, None),
            ("mkdir", libc::SYS_mkdir, None),
            ("symlink", libc::SYS_symlink, None),
        ],
    ]
    .concat();
    v
}

/// `jset #k, jt, jf`.
const BPF_JSET_K: u16 = (libc::BPF_JMP | libc::BPF_JSET | libc::BPF_K) as u16;

/// Offset in seccomp_data of the low 32 bits of argument `i`.
fn arg_low(i: u32) -> u32 {
    let at = 16 + 8 * i;
    if cfg!(target_endian = "big") {
        at + 4
    } else {
        at
    }
}

/// The program: load the syscall number, one compare per notified call; the calls that
/// create only with O_CREAT jump to a test of their flags at the end.
pub fn program() -> Vec<libc::sock_filter> {
    let calls: Vec<(libc::c_long, Option<u32>)> = notified_calls()
        .into_iter()
        .map(|(_, nr)| (nr, None))
        .chain(creating_calls().into_iter().map(|(_, nr, a)| (nr, a)))
        .collect();
    let n = calls.len();
    // Each flags test: `ld arg; jset O_CREAT; ret allow; ret notify`.
    const TEST: usize = 4;
    let mut p = vec![stmt(BPF_LD_W_ABS, 0)];
    let mut tests = Vec::new();
    for (k, (nr, arg)) in calls.iter().enumerate() {
        // Past this compare: the rest of the list, `ret allow`, `ret notify`.
        let to_notify = n - 1 - k + 1;
        let to = match arg {
            None => to_notify,
            Some(a) => {
                tests.push(*a);
                to_notify + 1 + (tests.len() - 1) * TEST
            }
        };
        p.push(jump(BPF_JEQ_K, *nr as u32, to as u8, 0));
    }
    p.push(stmt(BPF_RET_K, RET_ALLOW));
    p.push(stmt(BPF_RET_K, libc::SECCOMP_RET_USER_NOTIF));
    for a in tests {
        p.push(stmt(BPF_LD_W_ABS, arg_low(a)));
        p.push(jump(BPF_JSET_K, libc::O_CREAT as u32, 1, 0));
        p.push(stmt(BPF_RET_K, RET_ALLOW));
        p.push(stmt(BPF_RET_K, libc::SECCOMP_RET_USER_NOTIF));
    }
    p
}

/// Install [`program`] on the calling thread (kept across fork and exec) and return the
/// listener the supervisor serves. Needs no_new_privs or CAP_SYS_ADMIN in the current
/// user namespace, as any filter.
pub fn install() -> Result<OwnedFd, Errno> {
    let release = std::fs::read_to_string("/proc/sys/kernel/osrelease").unwrap_or_default();
    if !has_continue(&release) {
        return Err(Errno::ENOSYS);
    }
    crate::sys::install_listener(&program())
}

/// SECCOMP_USER_NOTIF_FLAG_CONTINUE came with Linux 5.5; before it the supervisor could
/// not let a call run. An unreadable release is taken as new enough (the install then
/// says whether notification works at all).
fn has_continue(release: &str) -> bool {
    let mut it = release.trim().split(['.', '-']);
    let major: u32 = it.next().and_then(|v| v.parse().ok()).unwrap_or(u32::MAX);
    let minor: u32 = it.next().and_then(|v| v.parse().ok()).unwrap_or(0);
    (major, minor) >= (5, 5)
}

/// An instruction without jumps.
pub fn stmt(code: u16, k: u32) -> libc::sock_filter {
    libc::sock_filter {
        code,
        jt: 0,
        jf: 0,
        k,
    }
}

/// A conditional jump: `jt`/`jf` instructions forward when true/false.
pub fn jump(code: u16, k: u32, jt: u8, jf: u8) -> libc::sock_filter {
    libc::sock_filter { code, jt, jf, k }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Run the program on a syscall number and the low words of its arguments.
    fn eval_args(p: &[libc::sock_filter], nr: u32, args: [u32; 6]) -> u32 {
        let mut pc = 0usize;
        let mut acc = 0u32;
        loop {
            let i = p[pc];
            match i.code {
                BPF_LD_W_ABS if i.k == 0 => acc = nr,
                BPF_LD_W_ABS => acc = args[((i.k - 16) / 8) as usize],
                BPF_JEQ_K => {
                    pc += if acc == i.k { i.jt } else { i.jf } as usize;
                }
                BPF_JSET_K => {
                    pc += if acc & i.k != 0 { i.jt } else { i.jf } as usize;
                }
                BPF_RET_K => return i.k,
                c => panic!("unexpected opcode {c}"),
            }
            pc += 1;
        }
    }

    fn eval(p: &[libc::sock_filter], nr: u32) -> u32 {
        eval_args(p, nr, [0; 6])
    }

    #[test]
    fn needs_a_kernel_that_can_continue_a_call() {
        assert!(has_continue("6.18.0-1-amd64\n"));
        assert!(has_continue("5.5.0"));
        assert!(!has_continue("5.4.0-150-generic"));
        assert!(!has_continue("4.18.0-553.el8_10.x86_64"));
        assert!(has_continue(""));
    }

    #[test]
    fn notifies_exactly_the_listed_calls() {
        let p = program();
        for (name, nr) in notified_calls() {
            assert_eq!(eval(&p, nr as u32), libc::SECCOMP_RET_USER_NOTIF, "{name}");
        }
        for nr in [
            libc::SYS_read,
            libc::SYS_openat,
            libc::SYS_execve,
            libc::SYS_getpid,
        ] {
            assert_eq!(eval(&p, nr as u32), RET_ALLOW, "{nr}");
        }
    }

    #[test]
    fn notifies_the_creating_calls_only_when_they_create() {
        let p = program();
        let creat = libc::O_CREAT as u32;
        for (name, nr, arg) in creating_calls() {
            let nr = nr as u32;
            match arg {
                None => assert_eq!(eval(&p, nr), libc::SECCOMP_RET_USER_NOTIF, "{name}"),
                Some(a) => {
                    let mut args = [libc::O_RDWR as u32; 6];
                    assert_eq!(eval_args(&p, nr, args), RET_ALLOW, "{name}");
                    args[a as usize] |= creat;
                    let got = eval_args(&p, nr, args);
                    assert_eq!(got, libc::SECCOMP_RET_USER_NOTIF, "{name}");
                }
            }
        }
        // O_CREAT in another argument than the flags changes nothing.
        let nr = libc::SYS_openat as u32;
        assert_eq!(eval_args(&p, nr, [creat, creat, 0, creat, 0, 0]), RET_ALLOW);
    }
}
