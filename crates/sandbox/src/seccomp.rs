//! The default seccomp filter: a small classic-BPF denylist equivalent in effect to
//! docker's default profile for a container without CAP_SYS_ADMIN (the syscalls docker
//! leaves out of its allowlist: kernel modules, kexec, mount API, namespaces, keyrings,
//! bpf, perf, clock setting, swap, reboot, process_vm_*, io_uring, …), each answered with
//! EPERM;
//! `clone` with namespace flags → EPERM; `clone3` → ENOSYS (libc falls back to clone,
//! whose flags we can inspect — docker does the same); foreign ABIs (x32, i386 on
//! x86_64) → EPERM.
//!
//! The fakeroot variant ([`Filter::Fakeroot`], the fallback for hosts without subordinate
//! ids, like charliecloud's `ch-run --seccomp`): the
//! same filter plus, in front of it, answers of success (return 0, nothing done) for
//! the calls the kernel would refuse under a single mapping, where only id 0 exists:
//! - `chown`, `lchown`, `fchown`, `fchownat` naming an id other than 0 and -1 (the kernel
//!   says EINVAL: unmapped id); chown to 0 or -1 runs for real (errors such as ENOENT and
//!   the clearing of set-id bits kept);
//! - `setuid`, `setgid`, `setreuid`, `setregid`, `setresuid`, `setresgid` naming an id
//!   other than 0 and -1 (EINVAL); the process stays uid/gid 0;
//! - `setgroups`, always (EPERM: setgroups is `deny` in a single mapping);
//! - `mknod`, `mknodat` of a block device or a character device other than 0:0 (EPERM
//!   in any user namespace): no node is created. A 0:0 character device (an overlay
//!   whiteout, allowed since Linux 5.8), fifos, sockets and files run for real.
//!
//! `setfsuid`/`setfsgid` never fail (they return the old id), so they are left alone;
//! `capset` works in the namespace. [`Filter::for_map`] picks the variant: fakeroot only
//! for [`MapKind::Single`] (there the container's user is always 0:0, so faking set*id
//! cannot leave a process with other ids than asked by the spec).
//!
//! Why not docker's profile through libseccomp or `seccompiler`: this is ~120 BPF
//! instructions (~230 with the fakeroot part; a syscall not faked passes 13 more
//! compares), no C library and no extra crate to compile; the lists are tables here.
//! Never: decides whether to install (the spec does: no filter at all, hence no fakeroot,
//! with `--privileged` or `seccomp=unconfined`), touches capabilities.

use nix::errno::Errno;

use crate::idmap::MapKind;

const SECCOMP_RET_ALLOW: u32 = 0x7fff_0000;
const SECCOMP_RET_ERRNO: u32 = 0x0005_0000;
/// SECCOMP_RET_ERRNO with data 0: the syscall returns 0 without running.
const FAKE_SUCCESS: u32 = SECCOMP_RET_ERRNO;

const BPF_LD_W_ABS: u16 = (libc::BPF_LD | libc::BPF_W | libc::BPF_ABS) as u16;
const BPF_JEQ_K: u16 = (libc::BPF_JMP | libc::BPF_JEQ | libc::BPF_K) as u16;
const BPF_JGE_K: u16 = (libc::BPF_JMP | libc::BPF_JGE | libc::BPF_K) as u16;
const BPF_JSET_K: u16 = (libc::BPF_JMP | libc::BPF_JSET | libc::BPF_K) as u16;
const BPF_RET_K: u16 = (libc::BPF_RET | libc::BPF_K) as u16;
const BPF_AND_K: u16 = (libc::BPF_ALU | libc::BPF_AND | libc::BPF_K) as u16;

/// Offset of the low 32 bits of `seccomp_data.args[i]` (little-endian targets only).
const fn arg_lo(i: u32) -> u32 {
    16 + 8 * i
}

/// Which filter a container gets (when the spec asks for one at all).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Filter {
    /// The docker-like denylist ([`program`]).
    Default,
    /// [`Filter::Default`] plus the fakeroot answers (module doc).
    Fakeroot,
}

impl Filter {
    /// Fakeroot for [`MapKind::Single`], the default filter for the other mappings (where
    /// chown and set*id to the mapped ids work for real).
    pub fn for_map(kind: MapKind) -> Filter {
        match kind {
            MapKind::Single => Filter::Fakeroot,
            MapKind::Identity | MapKind::SubIds => Filter::Default,
        }
    }
}

/// Calls faked under [`Filter::Fakeroot`] when one of the id arguments (by index) is
/// neither 0 nor -1: (name, number, id argument indexes).
pub fn fake_id_calls() -> Vec<(&'static str, libc::c_long, &'static [u32])> {
    let mut v: Vec<(&'static str, libc::c_long, &'static [u32])> = vec![
        ("fchown", libc::SYS_fchown, &[1, 2]),
        ("fchownat", libc::SYS_fchownat, &[2, 3]),
        ("setuid", libc::SYS_setuid, &[0]),
        ("setgid", libc::SYS_setgid, &[0]),
        ("setreuid", libc::SYS_setreuid, &[0, 1]),
        ("setregid", libc::SYS_setregid, &[0, 1]),
        ("setresuid", libc::SYS_setresuid, &[0, 1, 2]),
        ("setresgid", libc::SYS_setresgid, &[0, 1, 2]),
    ];
    #[cfg(target_arch = "x86_64")]
    v.extend([
        ("chown", libc::SYS_chown, &[1u32, 2] as &'static [u32]),
        ("lchown", libc::SYS_lchown, &[1, 2]),
    ]);
    v
}

/// mknod-family calls faked for devices: (name, number, mode argument, dev argument).
fn fake_mknod_calls() -> Vec<(&'static str, libc::c_long, u32, u32)> {
    let mut v = vec![("mknodat", libc::SYS_mknodat, 2, 3)];
    #[cfg(target_arch = "x86_64")]
    v.push(("mknod", libc::SYS_mknod, 1, 2));
    v
}

/// The fakeroot instructions; they expect the syscall number in A and leave it there
/// when they fall through (syscall not theirs).
fn fakeroot_blocks() -> Vec<libc::sock_filter> {
    let mut p = Vec::new();
    for (_, nr, args) in fake_id_calls() {
        // jeq nr; per arg: ld, jeq 0 (→ next arg), jeq -1 (→ next arg, else → fake);
        // ret allow; ret fake.
        let n = args.len() as u8;
        let len = 1 + 3 * n + 2;
        p.push(jump(BPF_JEQ_K, nr as u32, 0, len - 1));
        for (k, i) in args.iter().enumerate() {
            let k = k as u8;
            p.push(stmt(BPF_LD_W_ABS, arg_lo(*i)));
            p.push(jump(BPF_JEQ_K, 0, 1, 0));
            p.push(jump(BPF_JEQ_K, u32::MAX, 0, 3 * (n - k) - 2));
        }
        p.push(stmt(BPF_RET_K, SECCOMP_RET_ALLOW));
        p.push(stmt(BPF_RET_K, FAKE_SUCCESS));
    }
    p.push(jump(BPF_JEQ_K, libc::SYS_setgroups as u32, 0, 1));
    p.push(stmt(BPF_RET_K, FAKE_SUCCESS));
    for (_, nr, mode, dev) in fake_mknod_calls() {
        p.push(jump(BPF_JEQ_K, nr as u32, 0, 8));
        p.push(stmt(BPF_LD_W_ABS, arg_lo(mode)));
        p.push(stmt(BPF_AND_K, libc::S_IFMT));
        p.push(jump(BPF_JEQ_K, libc::S_IFBLK, 4, 0));
        p.push(jump(BPF_JEQ_K, libc::S_IFCHR, 0, 2));
        p.push(stmt(BPF_LD_W_ABS, arg_lo(dev)));
        p.push(jump(BPF_JEQ_K, 0, 0, 1));
        p.push(stmt(BPF_RET_K, SECCOMP_RET_ALLOW));
        p.push(stmt(BPF_RET_K, FAKE_SUCCESS));
    }
    p
}

#[cfg(target_arch = "x86_64")]
const AUDIT_ARCH: u32 = 0xc000_003e; // AUDIT_ARCH_X86_64
#[cfg(target_arch = "aarch64")]
const AUDIT_ARCH: u32 = 0xc000_00b7; // AUDIT_ARCH_AARCH64

/// The x32 ABI bit on x86_64: syscall numbers at or above it are another ABI.
#[cfg(target_arch = "x86_64")]
const X32_SYSCALL_BIT: u32 = 0x4000_0000;

/// Syscalls answered with EPERM.
pub fn denied() -> Vec<(&'static str, libc::c_long)> {
    let mut v = vec![
        ("acct", libc::SYS_acct),
        ("add_key", libc::SYS_add_key),
        ("bpf", libc::SYS_bpf),
        ("clock_adjtime", libc::SYS_clock_adjtime),
        ("clock_settime", libc::SYS_clock_settime),
        ("delete_module", libc::SYS_delete_module),
        ("finit_module", libc::SYS_finit_module),
        ("fsconfig", libc::SYS_fsconfig),
        ("fsmount", libc::SYS_fsmount),
        ("fsopen", libc::SYS_fsopen),
        ("fspick", libc::SYS_fspick),
        ("get_mempolicy", libc::SYS_get_mempolicy),
        ("init_module", libc::SYS_init_module),
        // io_uring runs file and network operations in kernel workers that seccomp never
        // sees, and has been a steady source of kernel bugs; docker's default blocks it.
        ("io_uring_enter", libc::SYS_io_uring_enter),
        ("io_uring_register", libc::SYS_io_uring_register),
        ("io_uring_setup", libc::SYS_io_uring_setup),
        ("kcmp", libc::SYS_kcmp),
        ("kexec_file_load", libc::SYS_kexec_file_load),
        ("kexec_load", libc::SYS_kexec_load),
        ("keyctl", libc::SYS_keyctl),
        ("lookup_dcookie", libc::SYS_lookup_dcookie),
        ("mbind", libc::SYS_mbind),
        ("mount", libc::SYS_mount),
        ("mount_setattr", libc::SYS_mount_setattr),
        ("move_mount", libc::SYS_move_mount),
        ("move_pages", libc::SYS_move_pages),
        ("name_to_handle_at", libc::SYS_name_to_handle_at),
        ("nfsservctl", libc::SYS_nfsservctl),
        ("open_by_handle_at", libc::SYS_open_by_handle_at),
        ("open_tree", libc::SYS_open_tree),
        ("perf_event_open", libc::SYS_perf_event_open),
        ("pivot_root", libc::SYS_pivot_root),
        ("process_vm_readv", libc::SYS_process_vm_readv),
        ("process_vm_writev", libc::SYS_process_vm_writev),
        ("quotactl", libc::SYS_quotactl),
        ("reboot", libc::SYS_reboot),
        ("request_key", libc::SYS_request_key),
        ("set_mempolicy", libc::SYS_set_mempolicy),
        ("setns", libc::SYS_setns),
        ("settimeofday", libc::SYS_settimeofday),
        ("swapoff", libc::SYS_swapoff),
        ("swapon", libc::SYS_swapon),
        ("syslog", libc::SYS_syslog),
        ("umount2", libc::SYS_umount2),
        ("unshare", libc::SYS_unshare),
        ("userfaultfd", libc::SYS_userfaultfd),
    ];
    #[cfg(target_arch = "x86_64")]
    v.extend([
        ("_sysctl", libc::SYS__sysctl),
        ("create_module", 174),
        ("get_kernel_syms", 177),
        ("ioperm", libc::SYS_ioperm),
        ("iopl", libc::SYS_iopl),
        ("query_module", 178),
        ("sysfs", libc::SYS_sysfs),
        ("uselib", libc::SYS_uselib),
        ("ustat", libc::SYS_ustat),
    ]);
    v
}

/// clone flags that create namespaces (CLONE_NEWNS … CLONE_NEWTIME).
pub const CLONE_NAMESPACE_FLAGS: u32 = (libc::CLONE_NEWNS
    | libc::CLONE_NEWUTS
    | libc::CLONE_NEWIPC
    | libc::CLONE_NEWUSER
    | libc::CLONE_NEWPID
    | libc::CLONE_NEWNET
    | libc::CLONE_NEWCGROUP) as u32
    | 0x80; // CLONE_NEWTIME

fn stmt(code: u16, k: u32) -> libc::sock_filter {
    libc::sock_filter {
        code,
        jt: 0,
        jf: 0,
        k,
    }
}

fn jump(code: u16, k: u32, jt: u8, jf: u8) -> libc::sock_filter {
    libc::sock_filter { code, jt, jf, k }
}

/// The default filter program (pure; unit-tested for shape): `program_for(Filter::Default)`.
pub fn program() -> Vec<libc::sock_filter> {
    program_for(Filter::Default)
}

/// The program of one [`Filter`] (pure; unit-tested by evaluation).
pub fn program_for(filter: Filter) -> Vec<libc::sock_filter> {
    let eperm = SECCOMP_RET_ERRNO | libc::EPERM as u32;
    let enosys = SECCOMP_RET_ERRNO | libc::ENOSYS as u32;
    let mut p = vec![
        // seccomp_data.arch at offset 4
        stmt(BPF_LD_W_ABS, 4),
        jump(BPF_JEQ_K, AUDIT_ARCH, 1, 0),
        stmt(BPF_RET_K, eperm),
        // seccomp_data.nr at offset 0
        stmt(BPF_LD_W_ABS, 0),
    ];
    #[cfg(target_arch = "x86_64")]
    {
        p.push(jump(BPF_JGE_K, X32_SYSCALL_BIT, 0, 1));
        p.push(stmt(BPF_RET_K, eperm));
    }
    if filter == Filter::Fakeroot {
        p.extend(fakeroot_blocks());
    }
    for (_, nr) in denied() {
        p.push(jump(BPF_JEQ_K, nr as u32, 0, 1));
        p.push(stmt(BPF_RET_K, eperm));
    }
    p.push(jump(BPF_JEQ_K, libc::SYS_clone3 as u32, 0, 1));
    p.push(stmt(BPF_RET_K, enosys));
    // clone: flags are args[0] (x86_64 and aarch64), low word at offset 16 (little-endian).
    p.push(jump(BPF_JEQ_K, libc::SYS_clone as u32, 0, 3));
    p.push(stmt(BPF_LD_W_ABS, 16));
    p.push(jump(BPF_JSET_K, CLONE_NAMESPACE_FLAGS, 0, 1));
    p.push(stmt(BPF_RET_K, eperm));
    p.push(stmt(BPF_RET_K, SECCOMP_RET_ALLOW));
    p
}

/// Install [`program`] on the calling thread (inherited by its children and kept across
/// exec). Needs no_new_privs or CAP_SYS_ADMIN in the current user namespace.
pub fn install_default() -> Result<(), Errno> {
    install(Filter::Default)
}

/// Install [`program_for(filter)`](program_for) on the calling thread, like
/// [`install_default`].
pub fn install(filter: Filter) -> Result<(), Errno> {
    crate::sys::install_seccomp(&program_for(filter))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn program_is_small_and_ends_in_allow() {
        let p = program();
        assert!(p.len() < 200, "{}", p.len());
        let last = p.last().unwrap();
        assert_eq!((last.code, last.k), (BPF_RET_K, SECCOMP_RET_ALLOW));
        // every conditional jump stays inside the program
        for (i, ins) in p
            .iter()
            .enumerate()
            .filter(|(_, ins)| ins.code & 0x07 == libc::BPF_JMP as u16)
        {
            assert!(i + 1 + (ins.jt.max(ins.jf) as usize) < p.len());
        }
    }

    #[test]
    fn denies_the_dangerous_ones() {
        let names: Vec<_> = denied().iter().map(|d| d.0).collect();
        for n in [
            "mount",
            "unshare",
            "setns",
            "kexec_load",
            "init_module",
            "bpf",
            "keyctl",
        ] {
            assert!(names.contains(&n), "{n}");
        }
        assert!(
            !names.contains(&"ptrace"),
            "docker allows ptrace on kernels >= 4.8"
        );
    }

    #[test]
    fn io_uring_is_denied_in_both_variants() {
        let eperm = SECCOMP_RET_ERRNO | libc::EPERM as u32;
        let names: Vec<_> = denied().iter().map(|d| d.0).collect();
        for (n, nr) in [
            ("io_uring_setup", libc::SYS_io_uring_setup),
            ("io_uring_enter", libc::SYS_io_uring_enter),
            ("io_uring_register", libc::SYS_io_uring_register),
        ] {
            assert!(names.contains(&n), "{n}");
            assert_eq!(default(nr, [1, 0, 0, 0, 0, 0]), eperm, "{n}");
            assert_eq!(fake(nr, [1, 0, 0, 0, 0, 0]), eperm, "{n} (fakeroot)");
        }
    }

    /// Interpret a program for one syscall (a tiny BPF evaluator for the opcodes used);
    /// `args` are the low words of args[0..6].
    fn run(p: &[libc::sock_filter], nr: u32, args: [u32; 6]) -> u32 {
        let data = |off: u32| match off {
            0 => nr,
            4 => AUDIT_ARCH,
            o if (16..64).contains(&o) && (o - 16) % 8 == 0 => args[((o - 16) / 8) as usize],
            _ => 0,
        };
        let (mut pc, mut a) = (0usize, 0u32);
        loop {
            let i = p[pc];
            match i.code {
                BPF_LD_W_ABS => a = data(i.k),
                BPF_AND_K => a &= i.k,
                BPF_RET_K => return i.k,
                BPF_JEQ_K | BPF_JGE_K | BPF_JSET_K => {
                    let t = match i.code {
                        BPF_JEQ_K => a == i.k,
                        BPF_JGE_K => a >= i.k,
                        _ => a & i.k != 0,
                    };
                    pc += if t { i.jt as usize } else { i.jf as usize };
                }
                c => panic!("opcode {c}"),
            }
            pc += 1;
        }
    }

    fn eval(nr: u32, arg0: u32) -> u32 {
        run(&program(), nr, [arg0, 0, 0, 0, 0, 0])
    }

    #[test]
    fn decisions() {
        let eperm = SECCOMP_RET_ERRNO | libc::EPERM as u32;
        assert_eq!(eval(libc::SYS_mount as u32, 0), eperm);
        assert_eq!(eval(libc::SYS_read as u32, 0), SECCOMP_RET_ALLOW);
        assert_eq!(eval(libc::SYS_execve as u32, 0), SECCOMP_RET_ALLOW);
        assert_eq!(
            eval(libc::SYS_clone as u32, libc::SIGCHLD as u32),
            SECCOMP_RET_ALLOW
        );
        assert_eq!(
            eval(libc::SYS_clone as u32, libc::CLONE_NEWUSER as u32),
            eperm
        );
        assert_eq!(
            eval(libc::SYS_clone3 as u32, 0),
            SECCOMP_RET_ERRNO | libc::ENOSYS as u32
        );
    }

    fn fake(nr: libc::c_long, args: [u32; 6]) -> u32 {
        run(&program_for(Filter::Fakeroot), nr as u32, args)
    }

    fn default(nr: libc::c_long, args: [u32; 6]) -> u32 {
        run(&program_for(Filter::Default), nr as u32, args)
    }

    const M1: u32 = u32::MAX; // -1: "leave unchanged"

    #[test]
    fn filter_for_map_kind() {
        assert_eq!(Filter::for_map(MapKind::Single), Filter::Fakeroot);
        assert_eq!(Filter::for_map(MapKind::SubIds), Filter::Default);
        assert_eq!(Filter::for_map(MapKind::Identity), Filter::Default);
        assert_eq!(program_for(Filter::Default), program());
    }

    #[test]
    fn fakeroot_program_shape() {
        let p = program_for(Filter::Fakeroot);
        assert!(p.len() < 255, "{}", p.len());
        let last = p.last().unwrap();
        assert_eq!((last.code, last.k), (BPF_RET_K, SECCOMP_RET_ALLOW));
        for (i, ins) in p
            .iter()
            .enumerate()
            .filter(|(_, ins)| ins.code & 0x07 == libc::BPF_JMP as u16)
        {
            assert!(i + 1 + (ins.jt.max(ins.jf) as usize) < p.len());
        }
    }

    #[test]
    fn fakeroot_fakes_chown_to_unmapped_ids_only() {
        let eperm = SECCOMP_RET_ERRNO | libc::EPERM as u32;
        // fchown(fd, uid, gid) and fchownat(dirfd, path, uid, gid, flags)
        for (nr, at) in [(libc::SYS_fchown, 1usize), (libc::SYS_fchownat, 2)] {
            let with = |uid: u32, gid: u32| {
                let mut a = [7u32; 6];
                a[at] = uid;
                a[at + 1] = gid;
                a
            };
            assert_eq!(fake(nr, with(33, 33)), FAKE_SUCCESS, "{nr}");
            assert_eq!(fake(nr, with(0, 33)), FAKE_SUCCESS, "{nr}");
            assert_eq!(fake(nr, with(33, M1)), FAKE_SUCCESS, "{nr}");
            assert_eq!(fake(nr, with(M1, 65534)), FAKE_SUCCESS, "{nr}");
            assert_eq!(fake(nr, with(0, 0)), SECCOMP_RET_ALLOW, "{nr}");
            assert_eq!(fake(nr, with(M1, 0)), SECCOMP_RET_ALLOW, "{nr}");
            assert_eq!(fake(nr, with(M1, M1)), SECCOMP_RET_ALLOW, "{nr}");
            assert_eq!(default(nr, with(33, 33)), SECCOMP_RET_ALLOW, "{nr}");
        }
        #[cfg(target_arch = "x86_64")]
        for nr in [libc::SYS_chown, libc::SYS_lchown] {
            assert_eq!(fake(nr, [9, 33, 33, 0, 0, 0]), FAKE_SUCCESS);
            assert_eq!(fake(nr, [9, 0, 0, 0, 0, 0]), SECCOMP_RET_ALLOW);
        }
        // the rest of the default filter still applies
        assert_eq!(fake(libc::SYS_mount, [0; 6]), eperm);
        assert_eq!(fake(libc::SYS_read, [33; 6]), SECCOMP_RET_ALLOW);
        assert_eq!(
            fake(libc::SYS_clone, [libc::CLONE_NEWUSER as u32, 0, 0, 0, 0, 0]),
            eperm
        );
    }

    #[test]
    fn fakeroot_fakes_set_ids_and_setgroups() {
        assert_eq!(fake(libc::SYS_setuid, [33, 0, 0, 0, 0, 0]), FAKE_SUCCESS);
        assert_eq!(
            fake(libc::SYS_setuid, [0, 5, 5, 5, 5, 5]),
            SECCOMP_RET_ALLOW
        );
        assert_eq!(fake(libc::SYS_setgid, [65534, 0, 0, 0, 0, 0]), FAKE_SUCCESS);
        assert_eq!(fake(libc::SYS_setreuid, [M1, 42, 0, 0, 0, 0]), FAKE_SUCCESS);
        assert_eq!(
            fake(libc::SYS_setregid, [M1, M1, 9, 0, 0, 0]),
            SECCOMP_RET_ALLOW
        );
        assert_eq!(fake(libc::SYS_setresuid, [0, 0, 42, 0, 0, 0]), FAKE_SUCCESS);
        assert_eq!(
            fake(libc::SYS_setresuid, [0, 0, 0, 1, 1, 1]),
            SECCOMP_RET_ALLOW
        );
        assert_eq!(
            fake(libc::SYS_setresgid, [42, 0, M1, 0, 0, 0]),
            FAKE_SUCCESS
        );
        assert_eq!(fake(libc::SYS_setgroups, [0, 0, 0, 0, 0, 0]), FAKE_SUCCESS);
        assert_eq!(fake(libc::SYS_setgroups, [1, 0, 0, 0, 0, 0]), FAKE_SUCCESS);
        assert_eq!(default(libc::SYS_setgroups, [1; 6]), SECCOMP_RET_ALLOW);
        assert_eq!(default(libc::SYS_setuid, [33; 6]), SECCOMP_RET_ALLOW);
        // never-failing or unrelated calls untouched
        assert_eq!(fake(libc::SYS_setfsuid, [33; 6]), SECCOMP_RET_ALLOW);
        assert_eq!(fake(libc::SYS_getuid, [33; 6]), SECCOMP_RET_ALLOW);
    }

    #[test]
    fn fakeroot_fakes_device_nodes_only() {
        let mut calls = vec![(libc::SYS_mknodat, 2usize)];
        #[cfg(target_arch = "x86_64")]
        calls.push((libc::SYS_mknod, 1));
        for (nr, at) in calls {
            let with = |mode: u32, dev: u32| {
                let mut a = [3u32; 6];
                a[at] = mode;
                a[at + 1] = dev;
                a
            };
            let makedev = (1u32 << 8) | 3; // c 1 3 (/dev/null)
            assert_eq!(fake(nr, with(libc::S_IFCHR | 0o666, makedev)), FAKE_SUCCESS);
            assert_eq!(fake(nr, with(libc::S_IFBLK | 0o660, 0)), FAKE_SUCCESS);
            assert_eq!(
                fake(nr, with(libc::S_IFCHR, 0)),
                SECCOMP_RET_ALLOW,
                "whiteout"
            );
            assert_eq!(fake(nr, with(libc::S_IFIFO | 0o644, 0)), SECCOMP_RET_ALLOW);
            assert_eq!(fake(nr, with(libc::S_IFREG | 0o644, 0)), SECCOMP_RET_ALLOW);
            assert_eq!(fake(nr, with(libc::S_IFSOCK, 0)), SECCOMP_RET_ALLOW);
            assert_eq!(fake(nr, with(0o644, 0)), SECCOMP_RET_ALLOW);
            assert_eq!(default(nr, with(libc::S_IFCHR, makedev)), SECCOMP_RET_ALLOW);
        }
    }
}
