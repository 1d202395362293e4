//! The filters, evaluated instruction by instruction for the calls they decide, against
//! a plain reading of the profile's rules.

use super::profile::{Action, Op};
use super::resolve::{applies, by_number};
use super::*;

const EPERM: u32 = SECCOMP_RET_ERRNO | libc::EPERM as u32;
const ENOSYS: u32 = SECCOMP_RET_ERRNO | libc::ENOSYS as u32;

fn nr(name: &str) -> u32 {
    syscalls::number(syscalls::NATIVE, name).unwrap_or_else(|| panic!("{name}"))
}

/// docker's default caps (what irun gives a container without --cap-add).
fn docker_caps() -> Vec<String> {
    [
        "CAP_CHOWN",
        "CAP_DAC_OVERRIDE",
        "CAP_FSETID",
        "CAP_FOWNER",
        "CAP_MKNOD",
        "CAP_NET_RAW",
        "CAP_SETGID",
        "CAP_SETUID",
        "CAP_SETFCAP",
        "CAP_SETPCAP",
        "CAP_NET_BIND_SERVICE",
        "CAP_SYS_CHROOT",
        "CAP_KILL",
        "CAP_AUDIT_WRITE",
    ]
    .map(String::from)
    .to_vec()
}

fn ctx_with(extra: &[&str]) -> Context {
    let mut caps = docker_caps();
    caps.extend(extra.iter().map(|c| c.to_string()));
    Context {
        arch: resolve::NATIVE_ARCH,
        table: syscalls::NATIVE,
        caps: Caps::Names(caps),
        kernel: (6, 1),
    }
}

fn default_program(filter: Filter, extra: &[&str]) -> Vec<libc::sock_filter> {
    program(
        filter,
        &Profile::docker_default().unwrap(),
        &ctx_with(extra),
    )
    .unwrap()
}

/// Interpret a program for one syscall (a tiny BPF evaluator for the opcodes used).
fn run(p: &[libc::sock_filter], nr: u32, args: [u64; 6]) -> u32 {
    run_counted(p, nr, args).0
}

/// [`run`], also counting the instructions executed.
fn run_counted(p: &[libc::sock_filter], nr: u32, args: [u64; 6]) -> (u32, usize) {
    let data = |off: u32| match off {
        0 => nr,
        4 => AUDIT_ARCH,
        o if (16..64).contains(&o) && o % 4 == 0 => {
            let a = args[((o - 16) / 8) as usize];
            let low_first = cfg!(target_endian = "little");
            if ((o - 16) % 8 == 0) == low_first {
                a as u32
            } else {
                (a >> 32) as u32
            }
        }
        _ => 0,
    };
    let (mut pc, mut a, mut n) = (0usize, 0u32, 0usize);
    const JGT: u16 = (libc::BPF_JMP | libc::BPF_JGT | libc::BPF_K) as u16;
    loop {
        let i = p[pc];
        n += 1;
        match i.code {
            BPF_LD_W_ABS => a = data(i.k),
            BPF_AND_K => a &= i.k,
            BPF_RET_K => return (i.k, n),
            tree::BPF_JA => pc += i.k as usize,
            BPF_JEQ_K | BPF_JGE_K | JGT => {
                let t = match i.code {
                    BPF_JEQ_K => a == i.k,
                    BPF_JGE_K => a >= i.k,
                    _ => a > i.k,
                };
                pc += if t { i.jt as usize } else { i.jf as usize };
            }
            c => panic!("opcode {c}"),
        }
        pc += 1;
    }
}

/// The decision of a plain reading of the profile: first applying rule whose args all
/// hold, else the default action.
fn reference(profile: &Profile, ctx: &Context, nr: u32, args: [u64; 6]) -> u32 {
    let rules = by_number(profile, ctx);
    for r in rules.get(&nr).into_iter().flatten() {
        let holds = r.args.iter().all(|c| {
            let a = args[c.index as usize];
            match c.op {
                Op::Eq => a == c.value,
                Op::Ne => a != c.value,
                Op::Lt => a < c.value,
                Op::Le => a <= c.value,
                Op::Gt => a > c.value,
                Op::Ge => a >= c.value,
                Op::MaskedEq => a & c.value == c.value_two,
            }
        });
        if holds {
            return r.action.0;
        }
    }
    profile.default_action.0
}

#[test]
fn default_profile_parses_and_is_small() {
    let p = Profile::docker_default().unwrap();
    assert_eq!(p.default_action, Action(EPERM));
    assert!(p.rules.len() > 30, "{}", p.rules.len());
    for extra in [
        &[][..],
        &["CAP_SYS_ADMIN", "CAP_SYS_NICE", "CAP_SYS_PTRACE"],
    ] {
        for f in [Filter::Default, Filter::Fakeroot] {
            let prog = default_program(f, extra);
            // far below the kernel's BPF_MAXINSNS (4096): attach cost grows with it
            assert!(prog.len() < 500, "{f:?} {extra:?}: {}", prog.len());
        }
    }
}

#[test]
fn dockers_decisions() {
    let p = default_program(Filter::Default, &[]);
    let call = |name: &str, a0: u64| run(&p, nr(name), [a0, 0, 0, 0, 0, 0]);
    assert_eq!(call("read", 0), SECCOMP_RET_ALLOW);
    assert_eq!(call("execve", 0), SECCOMP_RET_ALLOW);
    assert_eq!(call("mkdir", 0), SECCOMP_RET_ALLOW);
    for n in [
        "mount",
        "unshare",
        "setns",
        "kexec_load",
        "init_module",
        "bpf",
        "keyctl",
        "add_key",
        "fanotify_init",
        "quotactl_fd",
        "io_uring_setup",
        "io_uring_enter",
        "io_uring_register",
        "open_by_handle_at",
        "get_mempolicy",
        "move_pages",
    ] {
        assert_eq!(call(n, 0), EPERM, "{n}");
    }
    for n in [
        "process_vm_readv",
        "process_vm_writev",
        "ptrace",
        "name_to_handle_at",
        "clock_adjtime",
        "chroot",
    ] {
        assert_eq!(call(n, 0), SECCOMP_RET_ALLOW, "{n}");
    }
    assert_eq!(call("clone", libc::SIGCHLD as u64), SECCOMP_RET_ALLOW);
    assert_eq!(call("clone", libc::CLONE_NEWUSER as u64), EPERM);
    assert_eq!(
        call("clone", 0x80),
        SECCOMP_RET_ALLOW,
        "CLONE_NEWTIME: docker's mask lets it"
    );
    assert_eq!(call("clone3", 0), ENOSYS);
    for v in [0x0u64, 0x8, 0x20000, 0x20008, 0xffff_ffff] {
        assert_eq!(call("personality", v), SECCOMP_RET_ALLOW, "{v:#x}");
    }
    assert_eq!(call("personality", 0x0040000), EPERM, "ADDR_NO_RANDOMIZE");
    assert_eq!(call("personality", 0x1_0000_0000), EPERM, "64-bit compare");
    assert_eq!(call("socket", 40), EPERM, "AF_VSOCK");
    for af in [
        libc::AF_UNIX,
        libc::AF_INET,
        libc::AF_INET6,
        libc::AF_NETLINK,
        39,
        41,
    ] {
        assert_eq!(call("socket", af as u64), SECCOMP_RET_ALLOW, "{af}");
    }
    // another ABI's number space
    #[cfg(target_arch = "x86_64")]
    assert_eq!(run(&p, 0x4000_0000, [0; 6]), EPERM);
}

#[test]
fn caps_open_dockers_conditional_calls() {
    let admin = default_program(Filter::Default, &["CAP_SYS_ADMIN"]);
    for n in ["mount", "unshare", "setns", "bpf"] {
        assert_eq!(run(&admin, nr(n), [0; 6]), SECCOMP_RET_ALLOW, "{n}");
    }
    let ns = libc::CLONE_NEWUSER as u64;
    assert_eq!(
        run(&admin, nr("clone"), [ns, 0, 0, 0, 0, 0]),
        SECCOMP_RET_ALLOW
    );
    assert_eq!(run(&admin, nr("clone3"), [0; 6]), SECCOMP_RET_ALLOW);
    assert_eq!(
        run(&admin, nr("keyctl"), [0; 6]),
        EPERM,
        "no cap opens keyctl"
    );
    let nice = default_program(Filter::Default, &["CAP_SYS_NICE"]);
    for n in [
        "get_mempolicy",
        "mbind",
        "set_mempolicy",
        "move_pages",
        "migrate_pages",
    ] {
        assert_eq!(run(&nice, nr(n), [0; 6]), SECCOMP_RET_ALLOW, "{n}");
    }
    assert_eq!(run(&nice, nr("mount"), [0; 6]), EPERM);
    let all = program(
        Filter::Default,
        &Profile::docker_default().unwrap(),
        &Context {
            caps: Caps::All,
            ..ctx_with(&[])
        },
    )
    .unwrap();
    assert_eq!(run(&all, nr("reboot"), [0; 6]), SECCOMP_RET_ALLOW);
}

#[test]
fn min_kernel_and_arch_conditions() {
    let p = Profile::docker_default().unwrap();
    let old = Context {
        kernel: (4, 4),
        ..ctx_with(&[])
    };
    let prog = program(Filter::Default, &p, &old).unwrap();
    assert_eq!(run(&prog, nr("ptrace"), [0; 6]), EPERM, "minKernel 4.8");
    let rule = p
        .rules
        .iter()
        .find(|r| r.names.iter().any(|n| n == "arch_prctl"))
        .unwrap();
    assert_eq!(
        applies(rule, &ctx_with(&[])),
        resolve::NATIVE_ARCH == "amd64"
    );
    let s390 = Context {
        arch: "s390x",
        table: syscalls::S390X,
        ..ctx_with(&[])
    };
    let clones: Vec<_> = p
        .rules
        .iter()
        .filter(|r| r.names == ["clone"] && applies(r, &s390))
        .collect();
    assert_eq!(clones.len(), 1);
    assert_eq!(clones[0].args[0].index, 1, "s390's clone flags are args[1]");
}

/// The tree decides every syscall number 0..600 as a plain reading of the rules does,
/// for both variants and several capability sets and argument vectors.
#[test]
fn the_tree_decides_every_number_as_the_tables_do() {
    let profile = Profile::docker_default().unwrap();
    let faked: Vec<u32> = FAKE_ID_CALLS
        .iter()
        .filter_map(|(n, _)| syscalls::number(syscalls::NATIVE, n))
        .chain(
            ["setgroups", "mknod", "mknodat"]
                .iter()
                .filter_map(|n| syscalls::number(syscalls::NATIVE, n)),
        )
        .collect();
    let argsets: [[u64; 6]; 4] = [
        [0; 6],
        [0x11, 33, 33, 33, 0, 0],
        [40, 0, 0, 0, 0, 0],
        [libc::CLONE_NEWNS as u64, 1 << 40, 0, 0, 0, 0],
    ];
    for extra in [
        &[][..],
        &["CAP_SYS_ADMIN"],
        &["CAP_SYS_NICE", "CAP_SYS_PTRACE"],
    ] {
        let ctx = ctx_with(extra);
        let default = program(Filter::Default, &profile, &ctx).unwrap();
        let fake = program(Filter::Fakeroot, &profile, &ctx).unwrap();
        for nr in 0..600u32 {
            for args in argsets {
                let want = reference(&profile, &ctx, nr, args);
                assert_eq!(run(&default, nr, args), want, "{nr} {args:?} {extra:?}");
                if !faked.contains(&nr) {
                    assert_eq!(run(&fake, nr, args), want, "{nr} (fakeroot)");
                }
            }
        }
    }
}

#[test]
fn an_allowed_syscall_passes_few_compares() {
    for filter in [Filter::Default, Filter::Fakeroot] {
        let p = default_program(filter, &[]);
        for name in ["read", "write", "openat", "futex", "mmap", "close"] {
            let n = run_counted(&p, nr(name), [0; 6]).1;
            // arch check and number load (6), ~7 levels of 2, the ret
            assert!(n <= 24, "{filter:?}: {n} instructions for {name}");
        }
    }
}

#[test]
fn every_jump_lands_inside_the_program() {
    for filter in [Filter::Default, Filter::Fakeroot] {
        let p = default_program(filter, &["CAP_SYS_ADMIN"]);
        for (i, ins) in p.iter().enumerate() {
            let reach = match ins.code {
                tree::BPF_JA => ins.k as usize,
                c if c & 0x07 == libc::BPF_JMP as u16 => ins.jt.max(ins.jf) as usize,
                _ => continue,
            };
            assert!(i + 1 + reach < p.len(), "{filter:?}: jump at {i}");
        }
        let last = p.last().unwrap();
        assert_eq!(last.code, BPF_RET_K);
    }
}

#[test]
fn filter_for_map_kind() {
    assert_eq!(Filter::for_map(MapKind::Single), Filter::Fakeroot);
    assert_eq!(Filter::for_map(MapKind::SubIds), Filter::Default);
    assert_eq!(Filter::for_map(MapKind::Identity), Filter::Default);
}

const M1: u64 = u32::MAX as u64; // -1: "leave unchanged"

fn fake(name: &str, args: [u64; 6]) -> u32 {
    run(&default_program(Filter::Fakeroot, &[]), nr(name), args)
}

fn default(name: &str, args: [u64; 6]) -> u32 {
    run(&default_program(Filter::Default, &[]), nr(name), args)
}

#[test]
fn fakeroot_fakes_chown_to_unmapped_ids_only() {
    // fchown(fd, uid, gid) and fchownat(dirfd, path, uid, gid, flags)
    for (n, at) in [("fchown", 1usize), ("fchownat", 2)] {
        let with = |uid: u64, gid: u64| {
            let mut a = [7u64; 6];
            a[at] = uid;
            a[at + 1] = gid;
            a
        };
        assert_eq!(fake(n, with(33, 33)), FAKE_SUCCESS, "{n}");
        assert_eq!(fake(n, with(0, 33)), FAKE_SUCCESS, "{n}");
        assert_eq!(fake(n, with(33, M1)), FAKE_SUCCESS, "{n}");
        assert_eq!(fake(n, with(M1, 65534)), FAKE_SUCCESS, "{n}");
        assert_eq!(fake(n, with(0, 0)), SECCOMP_RET_ALLOW, "{n}");
        assert_eq!(fake(n, with(M1, 0)), SECCOMP_RET_ALLOW, "{n}");
        assert_eq!(fake(n, with(M1, M1)), SECCOMP_RET_ALLOW, "{n}");
        assert_eq!(default(n, with(33, 33)), SECCOMP_RET_ALLOW, "{n}");
    }
    #[cfg(target_arch = "x86_64")]
    for n in ["chown", "lchown"] {
        assert_eq!(fake(n, [9, 33, 33, 0, 0, 0]), FAKE_SUCCESS);
        assert_eq!(fake(n, [9, 0, 0, 0, 0, 0]), SECCOMP_RET_ALLOW);
    }
    // the rest of the profile still applies
    assert_eq!(fake("mount", [0; 6]), EPERM);
    assert_eq!(fake("read", [33; 6]), SECCOMP_RET_ALLOW);
    assert_eq!(
        fake("clone", [libc::CLONE_NEWUSER as u64, 0, 0, 0, 0, 0]),
        EPERM
    );
}

#[test]
fn fakeroot_falls_through_to_the_users_profile() {
    let p = Profile::parse(
        r#"{"defaultAction":"SCMP_ACT_ALLOW","syscalls":[{"names":["fchown"],"action":"SCMP_ACT_ERRNO","errnoRet":13}]}"#,
    )
    .unwrap();
    let prog = program(Filter::Fakeroot, &p, &ctx_with(&[])).unwrap();
    assert_eq!(run(&prog, nr("fchown"), [3, 33, 33, 0, 0, 0]), FAKE_SUCCESS);
    assert_eq!(
        run(&prog, nr("fchown"), [3, 0, 0, 0, 0, 0]),
        SECCOMP_RET_ERRNO | 13,
        "the profile's answer, not an allow"
    );
}

#[test]
fn fakeroot_fakes_set_ids_and_setgroups() {
    assert_eq!(fake("setuid", [33, 0, 0, 0, 0, 0]), FAKE_SUCCESS);
    assert_eq!(fake("setuid", [0, 5, 5, 5, 5, 5]), SECCOMP_RET_ALLOW);
    assert_eq!(fake("setgid", [65534, 0, 0, 0, 0, 0]), FAKE_SUCCESS);
    assert_eq!(fake("setreuid", [M1, 42, 0, 0, 0, 0]), FAKE_SUCCESS);
    assert_eq!(fake("setregid", [M1, M1, 9, 0, 0, 0]), SECCOMP_RET_ALLOW);
    assert_eq!(fake("setresuid", [0, 0, 42, 0, 0, 0]), FAKE_SUCCESS);
    assert_eq!(fake("setresuid", [0, 0, 0, 1, 1, 1]), SECCOMP_RET_ALLOW);
    assert_eq!(fake("setresgid", [42, 0, M1, 0, 0, 0]), FAKE_SUCCESS);
    assert_eq!(fake("setgroups", [0; 6]), FAKE_SUCCESS);
    assert_eq!(fake("setgroups", [1, 0, 0, 0, 0, 0]), FAKE_SUCCESS);
    assert_eq!(default("setgroups", [1; 6]), SECCOMP_RET_ALLOW);
    assert_eq!(default("setuid", [33; 6]), SECCOMP_RET_ALLOW);
    // never-failing or unrelated calls untouched
    assert_eq!(fake("setfsuid", [33; 6]), SECCOMP_RET_ALLOW);
    assert_eq!(fake("getuid", [33; 6]), SECCOMP_RET_ALLOW);
}

#[test]
fn fakeroot_fakes_device_nodes_only() {
    let mut calls = vec![("mknodat", 2usize)];
    #[cfg(target_arch = "x86_64")]
    calls.push(("mknod", 1));
    for (n, at) in calls {
        let with = |mode: u32, dev: u64| {
            let mut a = [3u64; 6];
            a[at] = mode as u64;
            a[at + 1] = dev;
            a
        };
        let makedev = (1u64 << 8) | 3; // c 1 3 (/dev/null)
        assert_eq!(fake(n, with(libc::S_IFCHR | 0o666, makedev)), FAKE_SUCCESS);
        assert_eq!(fake(n, with(libc::S_IFBLK | 0o660, 0)), FAKE_SUCCESS);
        assert_eq!(
            fake(n, with(libc::S_IFCHR, 0)),
            SECCOMP_RET_ALLOW,
            "whiteout"
        );
        assert_eq!(fake(n, with(libc::S_IFIFO | 0o644, 0)), SECCOMP_RET_ALLOW);
        assert_eq!(fake(n, with(libc::S_IFREG | 0o644, 0)), SECCOMP_RET_ALLOW);
        assert_eq!(fake(n, with(libc::S_IFSOCK, 0)), SECCOMP_RET_ALLOW);
        assert_eq!(fake(n, with(0o644, 0)), SECCOMP_RET_ALLOW);
        assert_eq!(default(n, with(libc::S_IFCHR, makedev)), SECCOMP_RET_ALLOW);
    }
}

#[test]
fn a_users_profile_with_every_operator() {
    let p = Profile::parse(
        r#"{"defaultAction":"SCMP_ACT_ALLOW","architectures":["SCMP_ARCH_X86_64"],
        "syscalls":[
          {"names":["mkdir","mkdirat"],"action":"SCMP_ACT_ERRNO"},
          {"name":"read","action":"SCMP_ACT_ERRNO","errnoRet":5,
           "args":[{"index":2,"value":4096,"op":"SCMP_CMP_GT"}]},
          {"names":["write"],"action":"SCMP_ACT_KILL_PROCESS",
           "args":[{"index":0,"value":3,"op":"SCMP_CMP_GE"},{"index":0,"value":9,"op":"SCMP_CMP_LE"}]},
          {"names":["dup"],"action":"SCMP_ACT_ERRNO","args":[{"index":0,"value":2,"op":"SCMP_CMP_LT"}]},
          {"names":["kill"],"action":"SCMP_ACT_LOG","args":[{"index":1,"value":255,"valueTwo":9,"op":"SCMP_CMP_MASKED_EQ"}]},
          {"names":["no_such_call"],"action":"SCMP_ACT_TRAP"}
        ]}"#,
    )
    .unwrap();
    let ctx = ctx_with(&[]);
    let prog = program(Filter::Default, &p, &ctx).unwrap();
    let cases: [(&str, [u64; 6]); 12] = [
        ("mkdir", [0; 6]),
        ("mkdirat", [0; 6]),
        ("read", [0, 0, 4096, 0, 0, 0]),
        ("read", [0, 0, 4097, 0, 0, 0]),
        ("read", [0, 0, 1 << 32, 0, 0, 0]),
        ("write", [2, 0, 0, 0, 0, 0]),
        ("write", [3, 0, 0, 0, 0, 0]),
        ("write", [9, 0, 0, 0, 0, 0]),
        ("write", [10, 0, 0, 0, 0, 0]),
        ("dup", [1, 0, 0, 0, 0, 0]),
        ("kill", [1, 0x109, 0, 0, 0, 0]),
        ("kill", [1, 15, 0, 0, 0, 0]),
    ];
    let want = [
        EPERM,
        EPERM,
        SECCOMP_RET_ALLOW,
        SECCOMP_RET_ERRNO | 5,
        SECCOMP_RET_ERRNO | 5,
        SECCOMP_RET_ALLOW,
        0x8000_0000,
        0x8000_0000,
        SECCOMP_RET_ALLOW,
        EPERM,
        0x7ffc_0000,
        SECCOMP_RET_ALLOW,
    ];
    for ((n, args), w) in cases.iter().zip(want) {
        assert_eq!(run(&prog, nr(n), *args), w, "{n} {args:?}");
        assert_eq!(
            reference(&p, &ctx, nr(n), *args),
            w,
            "{n} {args:?} (reference)"
        );
    }
}
