//! docker/OCI seccomp profiles (JSON): reading and checking one, and docker's default
//! profile, vendored in `crates/sandbox/profiles/seccomp/` (moby's `default.json`).
//! Owns: the profile's shape (`defaultAction`, `defaultErrnoRet`, `architectures`,
//! `syscalls[]` with `names`, `action`, `errnoRet`, `args`, `includes`, `excludes`), its
//! size bound and the errors naming the bad field. Fields docker's runtime reads and we
//! do not (`archMap`, `flags`, `comment`) are accepted and ignored.
//! Never: evaluates a condition or emits BPF (resolve.rs does), reads files (the caller
//! hands the text over: the sandbox gets it through the container's spec).

use serde::Deserialize;

/// Largest profile accepted (docker's default is 13 KiB).
pub const MAX_PROFILE_BYTES: usize = 1 << 20;

/// docker's default profile, as vendored.
pub const DEFAULT_JSON: &str = include_str!("../../profiles/seccomp/default.json");

/// Why a profile was refused.
#[derive(Debug, thiserror::Error)]
pub enum ProfileError {
    /// Larger than [`MAX_PROFILE_BYTES`].
    #[error("profile is {0} bytes, more than the {MAX_PROFILE_BYTES} accepted")]
    TooLarge(usize),
    /// Not JSON of a profile's shape (serde's message names the field and position).
    #[error("not a seccomp profile: {0}")]
    Json(#[from] serde_json::Error),
    /// A field holds a value we cannot use.
    #[error("{field}: {msg}")]
    Field {
        /// Where, like `syscalls[3].action`.
        field: String,
        /// What is wrong.
        msg: String,
    },
}

fn bad(field: impl Into<String>, msg: impl Into<String>) -> ProfileError {
    ProfileError::Field {
        field: field.into(),
        msg: msg.into(),
    }
}

/// What the filter does with a call: the `SECCOMP_RET_*` word.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Action(pub u32);

/// A comparison of one syscall argument (64 bits), libseccomp's operators.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Op {
    /// `SCMP_CMP_EQ`
    Eq,
    /// `SCMP_CMP_NE`
    Ne,
    /// `SCMP_CMP_LT`
    Lt,
    /// `SCMP_CMP_LE`
    Le,
    /// `SCMP_CMP_GT`
    Gt,
    /// `SCMP_CMP_GE`
    Ge,
    /// `SCMP_CMP_MASKED_EQ`: `arg & value == value_two`.
    MaskedEq,
}

/// One argument condition.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ArgCond {
    /// Argument index, 0..6.
    pub index: u32,
    /// The operand (the mask for [`Op::MaskedEq`]).
    pub value: u64,
    /// The second operand ([`Op::MaskedEq`]'s expected value).
    pub value_two: u64,
    /// The comparison.
    pub op: Op,
}

/// docker's `includes`/`excludes`: architectures (Go names: `amd64`, `arm64`, …),
/// capabilities (`CAP_…`), a minimum kernel (`major.minor`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Conds {
    /// Architectures.
    pub arches: Vec<String>,
    /// Capabilities.
    pub caps: Vec<String>,
    /// Kernel version (major, minor).
    pub min_kernel: Option<(u32, u32)>,
}

/// One `syscalls[]` entry, checked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rule {
    /// Syscall names (unknown to an architecture: skipped there, as docker does).
    pub names: Vec<String>,
    /// What to do when the args match.
    pub action: Action,
    /// All must hold.
    pub args: Vec<ArgCond>,
    /// Applies only when all of these hold.
    pub includes: Conds,
    /// Does not apply when any of these holds.
    pub excludes: Conds,
}

/// A checked profile.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Profile {
    /// For the calls no rule decides.
    pub default_action: Action,
    /// In profile order: for one call, the first rule whose args match decides.
    pub rules: Vec<Rule>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct RawProfile {
    default_action: String,
    default_errno_ret: Option<u32>,
    #[serde(default)]
    architectures: Option<Vec<String>>,
    #[serde(default)]
    syscalls: Option<Vec<RawSyscall>>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct RawSyscall {
    #[serde(default)]
    names: Option<Vec<String>>,
    /// The old single-name form.
    #[serde(default)]
    name: Option<String>,
    action: String,
    errno_ret: Option<u32>,
    #[serde(default)]
    args: Option<Vec<RawArg>>,
    #[serde(default)]
    includes: Option<RawConds>,
    #[serde(default)]
    excludes: Option<RawConds>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct RawArg {
    index: u32,
    value: u64,
    #[serde(default)]
    value_two: u64,
    op: String,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct RawConds {
    #[serde(default)]
    arches: Option<Vec<String>>,
    #[serde(default)]
    caps: Option<Vec<String>>,
    #[serde(default)]
    min_kernel: Option<String>,
}

const RET_KILL_THREAD: u32 = 0x0000_0000;
const RET_KILL_PROCESS: u32 = 0x8000_0000;
const RET_TRAP: u32 = 0x0003_0000;
const RET_ERRNO: u32 = 0x0005_0000;
const RET_TRACE: u32 = 0x7ff0_0000;
const RET_LOG: u32 = 0x7ffc_0000;
const RET_ALLOW: u32 = 0x7fff_0000;

/// `SCMP_ACT_*` → the return word; `errno` is `errnoRet` (EPERM when absent, as runc).
fn action(field: &str, name: &str, errno: Option<u32>) -> Result<Action, ProfileError> {
    let data = errno.unwrap_or(libc::EPERM as u32);
    if data > 0xffff {
        return Err(bad(field, format!("errno {data} is out of range")));
    }
    Ok(Action(match name {
        "SCMP_ACT_ALLOW" => RET_ALLOW,
        "SCMP_ACT_ERRNO" => RET_ERRNO | data,
        "SCMP_ACT_KILL" | "SCMP_ACT_KILL_THREAD" => RET_KILL_THREAD,
        "SCMP_ACT_KILL_PROCESS" => RET_KILL_PROCESS,
        "SCMP_ACT_TRAP" => RET_TRAP,
        "SCMP_ACT_TRACE" => RET_TRACE | data,
        "SCMP_ACT_LOG" => RET_LOG,
        "SCMP_ACT_NOTIFY" => {
            return Err(bad(
                field,
                "SCMP_ACT_NOTIFY is not supported (no seccomp agent)",
            ))
        }
        other => return Err(bad(field, format!("unknown action `{other}`"))),
    }))
}

fn op(field: &str, name: &str) -> Result<Op, ProfileError> {
    Ok(match name {
        "SCMP_CMP_EQ" => Op::Eq,
        "SCMP_CMP_NE" => Op::Ne,
        "SCMP_CMP_LT" => Op::Lt,
        "SCMP_CMP_LE" => Op::Le,
        "SCMP_CMP_GT" => Op::Gt,
        "SCMP_CMP_GE" => Op::Ge,
        "SCMP_CMP_MASKED_EQ" => Op::MaskedEq,
        other => return Err(bad(field, format!("unknown operator `{other}`"))),
    })
}

/// `"4.8"` (or `"5.10.3"`: the patch level is ignored) → (4, 8).
pub fn kernel_version(s: &str) -> Option<(u32, u32)> {
    let mut it = s.split(['.', '-', '+']);
    let major = it.next()?.parse().ok()?;
    let minor = it.next().map_or(Some(0), |m| m.parse().ok())?;
    Some((major, minor))
}

fn conds(field: &str, raw: Option<RawConds>) -> Result<Conds, ProfileError> {
    let Some(raw) = raw else {
        return Ok(Conds::default());
    };
    let min_kernel = match raw.min_kernel {
        None => None,
        Some(s) => Some(kernel_version(&s).ok_or_else(|| {
            bad(
                format!("{field}.minKernel"),
                format!("`{s}` is not a kernel version"),
            )
        })?),
    };
    Ok(Conds {
        arches: raw.arches.unwrap_or_default(),
        caps: raw.caps.unwrap_or_default(),
        min_kernel,
    })
}

impl Profile {
    /// Read and check a profile's JSON text.
    pub fn parse(text: &str) -> Result<Profile, ProfileError> {
        if text.len() > MAX_PROFILE_BYTES {
            return Err(ProfileError::TooLarge(text.len()));
        }
        let raw: RawProfile = serde_json::from_str(text)?;
        let default_action = action("defaultAction", &raw.default_action, raw.default_errno_ret)?;
        for (i, a) in raw.architectures.iter().flatten().enumerate() {
            if !a.starts_with("SCMP_ARCH_") {
                return Err(bad(
                    format!("architectures[{i}]"),
                    format!("unknown architecture `{a}`"),
                ));
            }
        }
        let mut rules = Vec::new();
        for (i, s) in raw.syscalls.into_iter().flatten().enumerate() {
            let at = format!("syscalls[{i}]");
            let mut names = s.names.unwrap_or_default();
            names.extend(s.name);
            if names.is_empty() {
                return Err(bad(format!("{at}.names"), "no syscall named"));
            }
            let action = action(&format!("{at}.action"), &s.action, s.errno_ret)?;
            let mut args = Vec::new();
            for (j, a) in s.args.into_iter().flatten().enumerate() {
                let af = format!("{at}.args[{j}]");
                if a.index > 5 {
                    return Err(bad(
                        format!("{af}.index"),
                        format!("{} is not an argument index (0 to 5)", a.index),
                    ));
                }
                args.push(ArgCond {
                    index: a.index,
                    value: a.value,
                    value_two: a.value_two,
                    op: op(&format!("{af}.op"), &a.op)?,
                });
            }
            rules.push(Rule {
                names,
                action,
                args,
                includes: conds(&format!("{at}.includes"), s.includes)?,
                excludes: conds(&format!("{at}.excludes"), s.excludes)?,
            });
        }
        Ok(Profile {
            default_action,
            rules,
        })
    }

    /// docker's default profile, plus imago's one addition: `move_pages` and
    /// `migrate_pages` with CAP_SYS_NICE, as docker's rule for the other NUMA
    /// memory-policy calls (MPI and HPC codes use them together; docs/hpc.md).
    pub fn docker_default() -> Result<Profile, ProfileError> {
        let mut p = Profile::parse(DEFAULT_JSON)?;
        p.rules.push(Rule {
            names: vec!["move_pages".into(), "migrate_pages".into()],
            action: Action(RET_ALLOW),
            args: vec![],
            includes: Conds {
                caps: vec!["CAP_SYS_NICE".into()],
                ..Conds::default()
            },
            excludes: Conds::default(),
        });
        Ok(p)
    }
}
