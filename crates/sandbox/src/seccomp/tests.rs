//! The filters, evaluated instruction by instruction for the calls they decide.

use super::*;

#[test]
fn program_is_small_and_ends_in_allow() {
    assert_shape(&program(), 200);
}

/// Shorter than `max`, ends in `ret allow`, every conditional jump inside the program.
fn assert_shape(p: &[libc::sock_filter], max: usize) {
    assert!(p.len() < max, "{}", p.len());
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
    run_counted(p, nr, args).0
}

/// [`run`], also counting the instructions executed.
fn run_counted(p: &[libc::sock_filter], nr: u32, args: [u32; 6]) -> (u32, usize) {
    let data = |off: u32| match off {
        0 => nr,
        4 => AUDIT_ARCH,
        o if (16..64).contains(&o) && (o - 16) % 8 == 0 => args[((o - 16) / 8) as usize],
        _ => 0,
    };
    let (mut pc, mut a, mut n) = (0usize, 0u32, 0usize);
    loop {
        let i = p[pc];
        n += 1;
        match i.code {
            BPF_LD_W_ABS => a = data(i.k),
            BPF_AND_K => a &= i.k,
            BPF_RET_K => return (i.k, n),
            tree::BPF_JA => pc += i.k as usize,
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
    // far below the kernel's BPF_MAXINSNS (4096): attach cost grows with it
    assert_shape(&program_for(Filter::Fakeroot), 400);
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

#[test]
fn personality_and_vsock_are_dockers_and_cma_is_allowed() {
    let eperm = SECCOMP_RET_ERRNO | libc::EPERM as u32;
    for f in [Filter::Default, Filter::Fakeroot] {
        let p = program_for(f);
        let call = |nr: libc::c_long, a0: u32| run(&p, nr as u32, [a0, 0, 0, 0, 0, 0]);
        for v in PERSONALITIES {
            assert_eq!(call(libc::SYS_personality, v), SECCOMP_RET_ALLOW, "{v:#x}");
        }
        // ADDR_NO_RANDOMIZE
        assert_eq!(call(libc::SYS_personality, 0x0040000), eperm);
        assert_eq!(call(libc::SYS_socket, AF_VSOCK), eperm);
        assert_eq!(
            call(libc::SYS_socket, libc::AF_INET as u32),
            SECCOMP_RET_ALLOW
        );
        assert_eq!(
            call(libc::SYS_socket, libc::AF_UNIX as u32),
            SECCOMP_RET_ALLOW
        );
        for nr in [
            libc::SYS_process_vm_readv,
            libc::SYS_process_vm_writev,
            libc::SYS_name_to_handle_at,
            libc::SYS_clock_adjtime,
        ] {
            assert_eq!(call(nr, 0), SECCOMP_RET_ALLOW, "{nr}");
        }
        for nr in [
            libc::SYS_fanotify_init,
            libc::SYS_quotactl_fd,
            libc::SYS_keyctl,
        ] {
            assert_eq!(call(nr, 0), eperm, "{nr}");
        }
    }
}

/// The decision a plain list of the same rules gives, for every syscall number.
#[test]
fn the_tree_decides_every_number_as_the_tables_do() {
    let eperm = SECCOMP_RET_ERRNO | libc::EPERM as u32;
    let denied: Vec<u32> = denied()
        .iter()
        .chain(numa_calls().iter())
        .map(|d| d.1 as u32)
        .collect();
    let faked: Vec<u32> = fake_id_calls().iter().map(|f| f.1 as u32).collect();
    for nr in 0..600u32 {
        if nr == libc::SYS_personality as u32 {
            continue; // its argument decides: personality_and_vsock_are_dockers…
        }
        let expect_default = if denied.contains(&nr) {
            eperm
        } else if nr == libc::SYS_clone3 as u32 {
            SECCOMP_RET_ERRNO | libc::ENOSYS as u32
        } else {
            SECCOMP_RET_ALLOW
        };
        // args that a fake call would fake, a clone without namespace flags
        let args = [0x11, 33, 33, 33, 0, 0];
        assert_eq!(default(nr as libc::c_long, args), expect_default, "{nr}");
        let expect_fake = if faked.contains(&nr) || nr == libc::SYS_setgroups as u32 {
            FAKE_SUCCESS
        } else {
            expect_default
        };
        if ![libc::SYS_mknodat as u32, 133].contains(&nr) {
            assert_eq!(
                fake(nr as libc::c_long, args),
                expect_fake,
                "{nr} (fakeroot)"
            );
        }
    }
}

#[test]
fn an_allowed_syscall_passes_few_compares() {
    for filter in [Filter::Default, Filter::Fakeroot] {
        let p = program_for(filter);
        for nr in [
            libc::SYS_read,
            libc::SYS_write,
            libc::SYS_openat,
            libc::SYS_futex,
        ] {
            let n = run_counted(&p, nr as u32, [0; 6]).1;
            // arch check and number load (4), ~5 levels, a leaf's compares, the ret
            assert!(n <= 20, "{filter:?}: {n} instructions for syscall {nr}");
        }
    }
}

#[test]
fn every_jump_lands_inside_the_program() {
    for filter in [Filter::Default, Filter::Fakeroot] {
        let p = program_for(filter);
        for (i, ins) in p.iter().enumerate() {
            let reach = match ins.code {
                tree::BPF_JA => ins.k as usize,
                c if c & 0x07 == libc::BPF_JMP as u16 => ins.jt.max(ins.jf) as usize,
                _ => continue,
            };
            assert!(i + 1 + reach < p.len(), "{filter:?}: jump at {i}");
        }
    }
}

#[test]
fn numa_calls_pass_only_with_cap_sys_nice() {
    let eperm = SECCOMP_RET_ERRNO | libc::EPERM as u32;
    for f in [Filter::Default, Filter::Fakeroot] {
        let (with, without) = (program_with(f, true), program_with(f, false));
        assert_eq!(without, program_for(f));
        assert_shape(&with, 400);
        for (n, nr) in numa_calls() {
            assert_eq!(run(&without, nr as u32, [0; 6]), eperm, "{n}");
            assert_eq!(run(&with, nr as u32, [0; 6]), SECCOMP_RET_ALLOW, "{n}");
        }
        // Nothing else changes: the dangerous ones stay denied.
        for (n, nr) in denied() {
            assert_eq!(run(&with, nr as u32, [0; 6]), eperm, "{n}");
        }
    }
}
