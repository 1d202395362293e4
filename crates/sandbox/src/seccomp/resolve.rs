//! A [`Profile`] for one container: docker's `includes`/`excludes` evaluated against the
//! build's architecture, the container's capability set and the running kernel, names
//! turned into this architecture's numbers, and each number's rules turned into a BPF
//! body (its argument compares, 64 bits wide, then the action).
//! Owns: that evaluation (docker's: every listed capability for `includes`, any one for
//! `excludes`) and the argument compares. Never: lays out the number dispatch (tree.rs),
//! installs anything.

use std::collections::BTreeMap;

use super::profile::{ArgCond, Conds, Op, Profile, Rule};
use super::syscalls::{self, Table};
use super::{jump, stmt, BPF_JEQ_K, BPF_JGE_K, BPF_LD_W_ABS, BPF_RET_K};

const BPF_JGT_K: u16 = (libc::BPF_JMP | libc::BPF_JGT | libc::BPF_K) as u16;
const BPF_AND_K: u16 = (libc::BPF_ALU | libc::BPF_AND | libc::BPF_K) as u16;

/// The container's capability set, as docker's conditions see it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Caps {
    /// Every capability (`--privileged`).
    All,
    /// These (`CAP_…` names).
    Names(Vec<String>),
}

impl Caps {
    pub(super) fn has(&self, cap: &str) -> bool {
        match self {
            Caps::All => true,
            Caps::Names(n) => n.iter().any(|c| c == cap),
        }
    }
}

/// What the conditions are evaluated against.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Context {
    /// Go's name of the architecture (`amd64`, `arm64`, `ppc64le`, `riscv64`, `s390x`).
    pub arch: &'static str,
    /// Name → number for that architecture.
    pub table: Table,
    /// The container's capabilities.
    pub caps: Caps,
    /// The running kernel (major, minor).
    pub kernel: (u32, u32),
}

/// Go's name of the architecture this is built for (docker's `arches` values).
#[cfg(target_arch = "x86_64")]
pub const NATIVE_ARCH: &str = "amd64";
/// Go's name of the architecture this is built for (docker's `arches` values).
#[cfg(target_arch = "aarch64")]
pub const NATIVE_ARCH: &str = "arm64";
/// Go's name of the architecture this is built for (docker's `arches` values).
#[cfg(all(target_arch = "powerpc64", target_endian = "little"))]
pub const NATIVE_ARCH: &str = "ppc64le";
/// Go's name of the architecture this is built for (docker's `arches` values).
#[cfg(target_arch = "riscv64")]
pub const NATIVE_ARCH: &str = "riscv64";
/// Go's name of the architecture this is built for (docker's `arches` values).
#[cfg(target_arch = "s390x")]
pub const NATIVE_ARCH: &str = "s390x";

impl Context {
    /// This architecture, the running kernel (uname; (0, 0) when unreadable, so that
    /// a `minKernel` rule stays off) and `caps`.
    pub fn native(caps: Caps) -> Context {
        Context {
            arch: NATIVE_ARCH,
            table: syscalls::NATIVE,
            caps,
            kernel: running_kernel(),
        }
    }
}

/// The running kernel (major, minor) from uname; (0, 0) when unreadable, so that a
/// `minKernel` rule stays off.
pub fn running_kernel() -> (u32, u32) {
    nix::sys::utsname::uname()
        .ok()
        .and_then(|u| {
            u.release()
                .to_str()
                .and_then(super::profile::kernel_version)
        })
        .unwrap_or((0, 0))
}

/// docker's rule selection: a rule is skipped when an `excludes` condition holds or an
/// `includes` condition does not.
pub fn applies(rule: &Rule, ctx: &Context) -> bool {
    let (inc, exc): (&Conds, &Conds) = (&rule.includes, &rule.excludes);
    let arch_in = |c: &Conds| c.arches.iter().any(|a| a == ctx.arch);
    if arch_in(exc)
        || exc.caps.iter().any(|c| ctx.caps.has(c))
        || exc.min_kernel.is_some_and(|k| ctx.kernel >= k)
    {
        return false;
    }
    (inc.arches.is_empty() || arch_in(inc))
        && inc.caps.iter().all(|c| ctx.caps.has(c))
        && inc.min_kernel.is_none_or(|k| ctx.kernel >= k)
}

/// The rules that apply, by syscall number, in profile order (names this architecture
/// lacks are skipped, as docker does).
pub fn by_number<'p>(profile: &'p Profile, ctx: &Context) -> BTreeMap<u32, Vec<&'p Rule>> {
    let mut m: BTreeMap<u32, Vec<&Rule>> = BTreeMap::new();
    for r in profile.rules.iter().filter(|r| applies(r, ctx)) {
        for n in &r.names {
            if let Some(nr) = syscalls::number(ctx.table, n) {
                let v = m.entry(nr).or_default();
                // A name listed twice in one rule must not count twice.
                if !v.last().is_some_and(|l| std::ptr::eq(*l, r)) {
                    v.push(r);
                }
            }
        }
    }
    m
}

/// Offset of the low and the high word of `seccomp_data.args[i]`.
fn arg_words(i: u32) -> (u32, u32) {
    let at = 16 + 8 * i;
    if cfg!(target_endian = "little") {
        (at, at + 4)
    } else {
        (at + 4, at)
    }
}

/// Marks a jump offset to patch: to the end of the clause (the condition failed).
const FAIL: u8 = u8::MAX;

/// One condition, appended to `out`: falls through when it holds, jumps to FAIL when not.
fn cond_into(out: &mut Vec<libc::sock_filter>, c: &ArgCond) {
    let (lo, hi) = arg_words(c.index);
    let (vl, vh) = (c.value as u32, (c.value >> 32) as u32);
    match c.op {
        Op::Eq => out.extend_from_slice(&[
            stmt(BPF_LD_W_ABS, hi),
            jump(BPF_JEQ_K, vh, 0, FAIL),
            stmt(BPF_LD_W_ABS, lo),
            jump(BPF_JEQ_K, vl, 0, FAIL),
        ]),
        Op::Ne => out.extend_from_slice(&[
            stmt(BPF_LD_W_ABS, hi),
            jump(BPF_JEQ_K, vh, 0, 2),
            stmt(BPF_LD_W_ABS, lo),
            jump(BPF_JEQ_K, vl, FAIL, 0),
        ]),
        Op::MaskedEq => {
            let (tl, th) = (c.value_two as u32, (c.value_two >> 32) as u32);
            out.extend_from_slice(&[
                stmt(BPF_LD_W_ABS, hi),
                stmt(BPF_AND_K, vh),
                jump(BPF_JEQ_K, th, 0, FAIL),
                stmt(BPF_LD_W_ABS, lo),
                stmt(BPF_AND_K, vl),
                jump(BPF_JEQ_K, tl, 0, FAIL),
            ])
        }
        // high word above: holds; equal: the low word decides; below: fails.
        Op::Gt | Op::Ge => out.extend_from_slice(&[
            stmt(BPF_LD_W_ABS, hi),
            jump(BPF_JGT_K, vh, 3, 0),
            jump(BPF_JEQ_K, vh, 0, FAIL),
            stmt(BPF_LD_W_ABS, lo),
            jump(
                if c.op == Op::Gt { BPF_JGT_K } else { BPF_JGE_K },
                vl,
                0,
                FAIL,
            ),
        ]),
        // high word below: holds; equal: the low word decides; above: fails.
        Op::Lt | Op::Le => out.extend_from_slice(&[
            stmt(BPF_LD_W_ABS, hi),
            jump(BPF_JGE_K, vh, 0, 3),
            jump(BPF_JEQ_K, vh, 0, FAIL),
            stmt(BPF_LD_W_ABS, lo),
            jump(
                if c.op == Op::Lt { BPF_JGE_K } else { BPF_JGT_K },
                vl,
                FAIL,
                0,
            ),
        ]),
    }
}

/// One rule as the emitter sees it: its argument conditions (all must hold) and its
/// action word.
pub(super) type Clause<'a> = (&'a [ArgCond], u32);

/// The body of one number, appended to `out`: each rule's conditions then its action, in
/// order; the default action when none matched. A rule without args ends the body.
pub(super) fn body_into<'a>(
    out: &mut Vec<libc::sock_filter>,
    rules: impl IntoIterator<Item = Clause<'a>>,
    default: u32,
) {
    for (args, action) in rules {
        let start = out.len();
        for c in args {
            cond_into(out, c);
        }
        out.push(stmt(BPF_RET_K, action));
        let end = out.len();
        for (i, ins) in out.iter_mut().enumerate().skip(start) {
            // A FAIL jumps past this rule's `ret`; conditions are at most 6 × 6
            // instructions, far below the 8-bit offset.
            let to_end = (end - i - 1) as u8;
            if ins.jt == FAIL {
                ins.jt = to_end;
            }
            if ins.jf == FAIL {
                ins.jf = to_end;
            }
        }
        if args.is_empty() {
            return;
        }
    }
    out.push(stmt(BPF_RET_K, default));
}
