//! Typed values of instruction arguments and flags, parsed after expansion:
//! `--chmod` modes (octal and chmod(1) symbolic), EXPOSE port specs, Go durations
//! (HEALTHCHECK), `RUN --mount` specs.
//! Never: touches files; `Chmod::apply` is arithmetic on mode bits.

use std::time::Duration;

/// A `--chmod` value: octal (`0644`, `755`, `0`) or symbolic (`u+rw,go-w`, `a+X`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Chmod {
    Octal(u32),
    Symbolic(Vec<SymbolicClause>),
}

/// One comma-separated clause of a symbolic mode: who, then operations.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SymbolicClause {
    /// Bits of `ugo` the clause applies to: 0o4 = u, 0o2 = g, 0o1 = o; 0 means "a".
    pub who: u8,
    pub ops: Vec<(char, String)>,
}

impl Chmod {
    /// Parses a `--chmod` value. The error text is BuildKit's.
    pub fn parse(s: &str) -> Result<Chmod, String> {
        let bad = || {
            format!(
                "invalid chmod parameter: '{s}'. it should be octal string and between 0 and 07777"
            )
        };
        if !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit()) {
            let v = u32::from_str_radix(s, 8).map_err(|_| bad())?;
            if v > 0o7777 {
                return Err(bad());
            }
            return Ok(Chmod::Octal(v));
        }
        let mut clauses = Vec::new();
        for part in s.split(',') {
            let mut chars = part.chars().peekable();
            let mut who = 0u8;
            while let Some(&c) = chars.peek() {
                match c {
                    'u' => who |= 4,
                    'g' => who |= 2,
                    'o' => who |= 1,
                    'a' => who |= 7,
                    _ => break,
                }
                chars.next();
            }
            let mut ops = Vec::new();
            while let Some(op) = chars.next() {
                if !matches!(op, '+' | '-' | '=') {
                    return Err(bad());
                }
                let mut perms = String::new();
                while let Some(&c) = chars.peek() {
                    if matches!(c, '+' | '-' | '=') {
                        break;
                    }
                    if !"rwxXstugo".contains(c) {
                        return Err(bad());
                    }
                    perms.push(c);
                    chars.next();
                }
                ops.push((op, perms));
            }
            if ops.is_empty() {
                return Err(bad());
            }
            clauses.push(SymbolicClause { who, ops });
        }
        Ok(Chmod::Symbolic(clauses))
    }

    /// The resulting permission bits for a file of mode `mode` (only the low 12 bits
    /// are used). `is_dir` matters for `X`. No umask is applied, as in BuildKit.
    pub fn apply(&self, mode: u32, is_dir: bool) -> u32 {
        let mut m = mode & 0o7777;
        let clauses = match self {
            Chmod::Octal(v) => return *v,
            Chmod::Symbolic(c) => c,
        };
        for cl in clauses {
            let who = if cl.who == 0 { 7 } else { cl.who };
            // mask of rwx bits for the selected classes
            let mut class_mask = 0u32;
            if who & 4 != 0 {
                class_mask |= 0o700;
            }
            if who & 2 != 0 {
                class_mask |= 0o070;
            }
            if who & 1 != 0 {
                class_mask |= 0o007;
            }
            for (op, perms) in &cl.ops {
                let mut bits = 0u32;
                for p in perms.chars() {
                    let rwx = match p {
                        'r' => 0o444,
                        'w' => 0o222,
                        'x' => 0o111,
                        'X' if is_dir || m & 0o111 != 0 => 0o111,
                        'X' => 0,
                        's' => {
                            let mut s = 0;
                            if who & 4 != 0 {
                                s |= 0o4000;
                            }
                            if who & 2 != 0 {
                                s |= 0o2000;
                            }
                            bits |= s;
                            0
                        }
                        't' => {
                            bits |= 0o1000;
                            0
                        }
                        'u' => ((m >> 6) & 7) * 0o111,
                        'g' => ((m >> 3) & 7) * 0o111,
                        'o' => (m & 7) * 0o111,
                        _ => 0,
                    };
                    bits |= rwx & class_mask;
                }
                match op {
                    '+' => m |= bits,
                    '-' => m &= !bits,
                    _ => {
                        let mut clear = class_mask;
                        if who & 4 != 0 {
                            clear |= 0o4000;
                        }
                        if who & 2 != 0 {
                            clear |= 0o2000;
                        }
                        m = (m & !clear) | bits;
                    }
                }
            }
        }
        m
    }
}

/// A port protocol of EXPOSE.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Proto {
    Tcp,
    Udp,
    Sctp,
}

impl Proto {
    pub fn as_str(&self) -> &'static str {
        match self {
            Proto::Tcp => "tcp",
            Proto::Udp => "udp",
            Proto::Sctp => "sctp",
        }
    }
}

/// One exposed container port (`80/tcp`), the key of the config's `ExposedPorts`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct PortSpec {
    pub port: u16,
    pub proto: Proto,
}

impl std::fmt::Display for PortSpec {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}", self.port, self.proto.as_str())
    }
}

impl PortSpec {
    /// Parses one (expanded) EXPOSE word: `80`, `80/udp`, `1234-1236/tcp`,
    /// `[ip:]host:container[/proto]` (only the container side is kept).
    pub fn parse(spec: &str) -> Result<Vec<PortSpec>, String> {
        if spec.is_empty() {
            return Err("no port specified: empty EXPOSE spec".into());
        }
        let (rest, proto) = match spec.rsplit_once('/') {
            Some((r, p)) => {
                let proto = match p.to_ascii_lowercase().as_str() {
                    "tcp" => Proto::Tcp,
                    "udp" => Proto::Udp,
                    "sctp" => Proto::Sctp,
                    _ => return Err(format!("invalid proto: {p:?} in {spec:?}")),
                };
                (r, proto)
            }
            None => (spec, Proto::Tcp),
        };
        let container = if let Some(after) = rest.strip_prefix('[') {
            // [ipv6]:host:container
            let Some((ip, tail)) = after.split_once(']') else {
                return Err(format!("invalid IP address in {spec:?}"));
            };
            ip.parse::<std::net::Ipv6Addr>()
                .map_err(|_| format!("invalid IP address {ip:?} in {spec:?}"))?;
            let parts: Vec<&str> = tail.split(':').collect();
            match parts.as_slice() {
                ["", _host, c] => *c,
                _ => return Err(format!("invalid port spec {spec:?}")),
            }
        } else {
            let parts: Vec<&str> = rest.split(':').collect();
            match parts.as_slice() {
                [c] => *c,
                [_host, c] => *c,
                [ip, _host, c] => {
                    if !ip.is_empty() && ip.parse::<std::net::IpAddr>().is_err() {
                        return Err(format!("invalid IP address {ip:?} in {spec:?}"));
                    }
                    *c
                }
                _ => return Err(format!("invalid port spec {spec:?}")),
            }
        };
        let port = |s: &str| {
            s.parse::<u16>()
                .map_err(|_| format!("invalid containerPort: {s:?} in {spec:?}"))
        };
        let (a, b) = match container.split_once('-') {
            Some((a, b)) => (port(a)?, port(b)?),
            None => {
                let p = port(container)?;
                (p, p)
            }
        };
        if b < a {
            return Err(format!("invalid port range {container:?} in {spec:?}"));
        }
        Ok((a..=b).map(|port| PortSpec { port, proto }).collect())
    }
}

/// Go's `time.ParseDuration`, non-negative only (`30s`, `1m30s`, `1.5h`, `250ms`, `0`).
pub fn parse_go_duration(s: &str) -> Result<Duration, String> {
    let bad = || format!("invalid duration {s:?} (expected e.g. 30s, 1m30s, 250ms)");
    let mut rest = s.strip_prefix('+').unwrap_or(s);
    if rest.starts_with('-') {
        return Err(format!("negative duration {s:?}"));
    }
    if rest == "0" {
        return Ok(Duration::ZERO);
    }
    if rest.is_empty() {
        return Err(bad());
    }
    let mut total: f64 = 0.0;
    while !rest.is_empty() {
        let n = rest
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .unwrap_or(rest.len());
        let num = &rest[..n];
        if num.is_empty() || num == "." || num.matches('.').count() > 1 {
            return Err(bad());
        }
        let value: f64 = num.parse().map_err(|_| bad())?;
        rest = &rest[n..];
        let u = rest
            .find(|c: char| c.is_ascii_digit() || c == '.')
            .unwrap_or(rest.len());
        let unit = &rest[..u];
        rest = &rest[u..];
        let nanos = match unit {
            "ns" => 1.0,
            "us" | "µs" | "μs" => 1e3,
            "ms" => 1e6,
            "s" => 1e9,
            "m" => 60e9,
            "h" => 3600e9,
            _ => return Err(bad()),
        };
        total += value * nanos;
    }
    if !total.is_finite() || total > u64::MAX as f64 {
        return Err(bad());
    }
    // Rounded: the float sum of `2.3s` is a hair under 2.3e9, Go's integer parse is not.
    Ok(Duration::from_nanos(total.round() as u64))
}

/// The type of a `RUN --mount`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MountType {
    Bind,
    Cache,
    Tmpfs,
    Secret,
    Ssh,
}

/// `sharing=` of a cache mount.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Sharing {
    Shared,
    Private,
    Locked,
}

/// A parsed `RUN --mount=...` value (after expansion), BuildKit's `runmount.go`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Mount {
    pub kind: MountType,
    /// Where in the container; defaults: secret `/run/secrets/<id>`, ssh
    /// `/run/buildkit/ssh_agent.<n>` (left to the engine: None here).
    pub target: Option<String>,
    pub source: Option<String>,
    /// `from=<stage|image>` for bind and cache.
    pub from: Option<String>,
    pub read_only: bool,
    pub id: Option<String>,
    pub sharing: Sharing,
    pub mode: Option<u32>,
    pub uid: Option<u32>,
    pub gid: Option<u32>,
    /// tmpfs `size=` in bytes.
    pub size: Option<u64>,
    pub required: bool,
    /// secret `env=VAR`.
    pub env: Option<String>,
}

const MOUNT_KEYS: [&str; 18] = [
    "type",
    "target",
    "dst",
    "destination",
    "source",
    "src",
    "from",
    "ro",
    "readonly",
    "rw",
    "readwrite",
    "id",
    "sharing",
    "mode",
    "uid",
    "gid",
    "size",
    "required",
];

impl Mount {
    /// Parses one (expanded) `--mount` value: comma-separated `key=value` fields.
    pub fn parse(value: &str) -> Result<Mount, String> {
        let mut m = Mount {
            kind: MountType::Bind,
            target: None,
            source: None,
            from: None,
            read_only: true,
            id: None,
            sharing: Sharing::Shared,
            mode: None,
            uid: None,
            gid: None,
            size: None,
            required: false,
            env: None,
        };
        let mut ro_set: Option<bool> = None;
        // the type decides defaults, so read it first
        for field in value.split(',') {
            if let Some((k, v)) = field.split_once('=') {
                if k.trim().eq_ignore_ascii_case("type") {
                    m.kind = match v.trim() {
                        "bind" => MountType::Bind,
                        "cache" => MountType::Cache,
                        "tmpfs" => MountType::Tmpfs,
                        "secret" => MountType::Secret,
                        "ssh" => MountType::Ssh,
                        other => return Err(format!("unsupported mount type {other:?}")),
                    };
                }
            }
        }
        m.read_only = matches!(m.kind, MountType::Bind | MountType::Secret | MountType::Ssh);
        for field in value.split(',') {
            let field = field.trim();
            if field.is_empty() {
                continue;
            }
            let (key, val) = match field.split_once('=') {
                Some((k, v)) => (k.trim().to_lowercase(), Some(v.trim())),
                None => (field.to_lowercase(), None),
            };
            let boolean = |v: Option<&str>| -> Result<bool, String> {
                match v.map(str::to_lowercase).as_deref() {
                    None | Some("true") | Some("1") => Ok(true),
                    Some("false") | Some("0") => Ok(false),
                    Some(o) => Err(format!("invalid value for {key}: {o}")),
                }
            };
            let need = |v: Option<&str>| -> Result<String, String> {
                v.map(str::to_string)
                    .ok_or_else(|| format!("invalid field '{field}' must be a key=value pair"))
            };
            let num = |v: Option<&str>| -> Result<u32, String> {
                let v = need(v)?;
                v.parse::<u32>()
                    .map_err(|_| format!("invalid value for {key}: {v}"))
            };
            match key.as_str() {
                "type" => {}
                "target" | "dst" | "destination" => m.target = Some(need(val)?),
                "source" | "src" => m.source = Some(need(val)?),
                "from" => m.from = Some(need(val)?),
                "ro" | "readonly" => ro_set = Some(boolean(val)?),
                "rw" | "readwrite" => ro_set = Some(!boolean(val)?),
                "id" => m.id = Some(need(val)?),
                "sharing" => {
                    m.sharing = match need(val)?.as_str() {
                        "shared" => Sharing::Shared,
                        "private" => Sharing::Private,
                        "locked" => Sharing::Locked,
                        o => return Err(format!("unsupported sharing value {o:?}")),
                    }
                }
                "mode" => {
                    let v = need(val)?;
                    m.mode = Some(
                        u32::from_str_radix(&v, 8)
                            .map_err(|_| format!("invalid value {v} for mode"))?,
                    );
                }
                "uid" => m.uid = Some(num(val)?),
                "gid" => m.gid = Some(num(val)?),
                "size" => {
                    let v = need(val)?;
                    m.size =
                        Some(parse_size(&v).ok_or_else(|| format!("invalid value {v} for size"))?);
                }
                "required" => m.required = boolean(val)?,
                "env" if m.kind == MountType::Secret => m.env = Some(need(val)?),
                other => {
                    let hint = crate::model::suggest(other, &MOUNT_KEYS)
                        .map_or(String::new(), |s| format!(" (did you mean {s}?)"));
                    return Err(format!("unexpected key '{other}' in '{field}'{hint}"));
                }
            }
        }
        if let Some(ro) = ro_set {
            m.read_only = ro;
        }
        if m.target.is_none()
            && matches!(
                m.kind,
                MountType::Bind | MountType::Cache | MountType::Tmpfs
            )
        {
            return Err("mount target is required (add target=/path)".into());
        }
        if m.kind == MountType::Cache && m.id.is_none() {
            m.id = m.target.clone();
        }
        Ok(m)
    }
}

/// `64m`, `1g`, `1024` (bytes), as docker's `units.RAMInBytes`.
fn parse_size(s: &str) -> Option<u64> {
    let s = s.trim().to_lowercase();
    let n = s
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(s.len());
    let value: f64 = s[..n].parse().ok()?;
    let mult: f64 = match s[n..].trim_end_matches('b').trim_end_matches('i') {
        "" => 1.0,
        "k" => 1024.0,
        "m" => 1024.0 * 1024.0,
        "g" => 1024.0 * 1024.0 * 1024.0,
        "t" => 1024f64.powi(4),
        _ => return None,
    };
    Some((value * mult) as u64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chmod_octal_and_symbolic() {
        assert_eq!(Chmod::parse("0644"), Ok(Chmod::Octal(0o644)));
        assert_eq!(Chmod::parse("777"), Ok(Chmod::Octal(0o777)));
        assert_eq!(Chmod::parse("0"), Ok(Chmod::Octal(0)));
        let e = Chmod::parse("64a").unwrap_err();
        assert_eq!(
            e,
            "invalid chmod parameter: '64a'. it should be octal string and between 0 and 07777"
        );
        assert!(Chmod::parse("10000").is_err());
        assert!(Chmod::parse("").is_err());
        let c = |s: &str, m: u32, d: bool| Chmod::parse(s).unwrap().apply(m, d);
        assert_eq!(c("go-w", 0o777, false), 0o755);
        assert_eq!(c("u=rw,g=r,o=r", 0o777, false), 0o644);
        assert_eq!(c("a+X", 0o644, false), 0o644);
        assert_eq!(c("a+X", 0o644, true), 0o755);
        assert_eq!(c("a+X", 0o744, false), 0o755);
        assert_eq!(c("u+rw,g+r,o-x,o+w", 0o001, false), 0o642);
    }

    #[test]
    fn ports() {
        let p = |s: &str| {
            PortSpec::parse(s).map(|v| v.iter().map(|p| p.to_string()).collect::<Vec<_>>())
        };
        assert_eq!(p("80").unwrap(), ["80/tcp"]);
        assert_eq!(p("4000/udp").unwrap(), ["4000/udp"]);
        assert_eq!(
            p("1234-1236/tcp").unwrap(),
            ["1234/tcp", "1235/tcp", "1236/tcp"]
        );
        assert_eq!(p("0.0.0.0:1234:1234/udp").unwrap(), ["1234/udp"]);
        assert_eq!(p("[::1]:80:80").unwrap(), ["80/tcp"]);
        assert!(p("localhost:80:80").is_err());
        assert!(p("").is_err());
        assert!(p("80/xyz").is_err());
    }

    #[test]
    fn durations() {
        assert_eq!(parse_go_duration("30s"), Ok(Duration::from_secs(30)));
        assert_eq!(parse_go_duration("1m30s"), Ok(Duration::from_secs(90)));
        assert_eq!(parse_go_duration("1.5h"), Ok(Duration::from_secs(5400)));
        assert_eq!(parse_go_duration("250ms"), Ok(Duration::from_millis(250)));
        assert_eq!(parse_go_duration("2.3s"), Ok(Duration::from_millis(2300)));
        assert_eq!(parse_go_duration("0"), Ok(Duration::ZERO));
        assert!(parse_go_duration("10").is_err());
        assert!(parse_go_duration("-1s").is_err());
        assert!(parse_go_duration("s").is_err());
    }

    #[test]
    fn mounts() {
        let m = Mount::parse("type=cache,target=/root/.cache,uid=1001,gid=1002,mode=0751").unwrap();
        assert_eq!(m.kind, MountType::Cache);
        assert_eq!(m.id.as_deref(), Some("/root/.cache"));
        assert_eq!(
            (m.uid, m.gid, m.mode),
            (Some(1001), Some(1002), Some(0o751))
        );
        assert!(!m.read_only);
        let m = Mount::parse("target=/ctx").unwrap();
        assert!(m.kind == MountType::Bind && m.read_only);
        let m = Mount::parse("from=stage,src=/x,target=/y,rw").unwrap();
        assert!(!m.read_only);
        let e = Mount::parse("typ=cache,target=/x").unwrap_err();
        assert!(
            e.contains("unexpected key 'typ'") && e.contains("did you mean type?"),
            "{e}"
        );
        let e = Mount::parse("type=tmp,target=/x").unwrap_err();
        assert!(e.contains("unsupported mount type \"tmp\""), "{e}");
        let m = Mount::parse("type=secret,id=tok,env=TOKEN").unwrap();
        assert_eq!(m.env.as_deref(), Some("TOKEN"));
    }
}
