//! The fuzz entry functions: one per parser of hostile input, each taking any bytes.
//! The cargo-fuzz targets (fuzz_targets/*.rs) call them, and the workspace test
//! tests/it/fuzz_corpus.rs feeds every file of fuzz/corpus/<target>/ to the same
//! functions, so a crash found once stays a test.
//!
//! Owns: what each target exercises and the invariants it asserts beyond "no panic"
//! (a layer unpack writes nothing outside its directory; a reference prints to a string
//! that parses back to itself). Never: changes the libraries' behaviour or options
//! beyond what a caller of their public API may choose.

use std::path::{Path, PathBuf};

/// The names [`entry`] knows, in the order scripts/fuzz.sh runs them.
pub const TARGETS: &[&str] = &[
    "tar_unpack",
    "oci_json",
    "reference",
    "dockerfile",
    "expand",
    "ignore",
    "www_authenticate",
    "registries_conf",
    "squash",
];

/// The entry function of `target`, by name.
pub fn entry(target: &str) -> Option<fn(&[u8])> {
    Some(match target {
        "tar_unpack" => tar_unpack,
        "oci_json" => oci_json,
        "reference" => reference,
        "dockerfile" => dockerfile,
        "expand" => expand,
        "ignore" => ignore,
        "www_authenticate" => www_authenticate,
        "registries_conf" => registries_conf,
        "squash" => squash,
        _ => return None,
    })
}

/// Scratch for the targets that need files: `$IMAGO_FUZZ_TMP`, else `$IMAGO_TEST_TMP`,
/// else the system temp dir.
fn scratch() -> PathBuf {
    ["IMAGO_FUZZ_TMP", "IMAGO_TEST_TMP"]
        .iter()
        .find_map(std::env::var_os)
        .map(PathBuf::from)
        .unwrap_or_else(std::env::temp_dir)
}

fn temp_dir() -> tempfile::TempDir {
    let base = scratch();
    // A missing base is created once; when that fails, tempdir_in reports it below.
    let _ = std::fs::create_dir_all(&base);
    match tempfile::Builder::new()
        .prefix("imago-fuzz")
        .tempdir_in(&base)
    {
        Ok(d) => d,
        Err(e) => panic!("fuzz scratch {}: {e}", base.display()),
    }
}

/// Every name under `dir` with its type and, for files, content: the fingerprint of what
/// an escape would change. Never follows a symlink.
fn snapshot(dir: &Path) -> Vec<(PathBuf, String)> {
    let mut out = Vec::new();
    let mut todo = vec![dir.to_path_buf()];
    while let Some(d) = todo.pop() {
        let Ok(rd) = std::fs::read_dir(&d) else {
            out.push((d, "unreadable".into()));
            continue;
        };
        for e in rd.flatten() {
            let p = e.path();
            let what = match std::fs::symlink_metadata(&p) {
                Ok(m) if m.is_dir() => {
                    todo.push(p.clone());
                    "dir".to_string()
                }
                Ok(m) if m.is_file() => {
                    format!("file {:?}", std::fs::read(&p).unwrap_or_default())
                }
                Ok(m) => format!("other {:?}", m.file_type()),
                Err(e) => format!("error {e}"),
            };
            out.push((p, what));
        }
    }
    out.sort();
    out
}

/// A layer tar (plain, gzip or zstd) unpacked into an empty directory beside a sibling
/// directory; whatever the result, the sibling and the parent must be unchanged.
pub fn tar_unpack(data: &[u8]) {
    use imago_oci::layer::{remove_tree, unpack, OwnerMode, UnpackOptions};
    let tmp = temp_dir();
    let dest = tmp.path().join("dest");
    let sibling = tmp.path().join("sibling");
    let made = std::fs::create_dir(&dest)
        .and_then(|()| std::fs::create_dir(&sibling))
        .and_then(|()| std::fs::write(sibling.join("marker"), b"untouched"));
    if let Err(e) = made {
        panic!("fuzz scratch {}: {e}", tmp.path().display());
    }
    let outside = |tmp: &Path| -> Vec<(PathBuf, String)> {
        let mut s = snapshot(tmp);
        s.retain(|(p, _)| !p.starts_with(&dest) || p == &dest);
        s
    };
    let before = outside(tmp.path());
    // Root lchowns for real; anyone else records owners in an xattr (the store's choice).
    let root = std::fs::metadata("/proc/self").is_ok_and(|m| {
        use std::os::unix::fs::MetadataExt;
        m.uid() == 0
    });
    let opts = UnpackOptions {
        owner: if root {
            OwnerMode::Real
        } else {
            OwnerMode::Xattr
        },
        skip_devices: true,
        max_bytes: Some(64 << 20),
        max_entries: 4096,
        ..UnpackOptions::default()
    };
    // Any error is fine (hostile input); the assertion is about what it touched.
    let _ = unpack(data, &dest, &opts);
    let after = outside(tmp.path());
    assert_eq!(before, after, "unpack changed files outside its directory");
    // mode-000 dirs and read-only trees: the shared remover; the TempDir drop then
    // finds only the sibling.
    if let Err(e) = remove_tree(&dest) {
        panic!("remove {}: {e}", dest.display());
    }
}

/// Manifest, index and config JSON: the registry's manifest parser under each content
/// type, the platform choice, and the oci-spec models with a round trip.
pub fn oci_json(data: &[u8]) {
    use imago_oci::spec::{ImageConfiguration, ImageIndex, ImageManifest};
    use imago_registry::manifest;
    for ct in [
        None,
        Some("application/vnd.oci.image.manifest.v1+json"),
        Some("application/vnd.oci.image.index.v1+json"),
        Some("application/vnd.docker.distribution.manifest.v2+json; charset=utf-8"),
        Some("application/vnd.docker.distribution.manifest.list.v2+json"),
    ] {
        if let Ok(parsed) = manifest::parse(data, ct) {
            // An index without a match is an error, never a panic.
            let _ = manifest::choose(&parsed, &manifest::Platform::host());
        }
    }
    if let Ok(m) = serde_json::from_slice::<ImageManifest>(data) {
        let bytes = serde_json::to_vec(&m).unwrap_or_default();
        assert!(serde_json::from_slice::<ImageManifest>(&bytes).is_ok());
    }
    if let Ok(i) = serde_json::from_slice::<ImageIndex>(data) {
        let bytes = serde_json::to_vec(&i).unwrap_or_default();
        assert!(serde_json::from_slice::<ImageIndex>(&bytes).is_ok());
    }
    if let Ok(c) = serde_json::from_slice::<ImageConfiguration>(data) {
        let bytes = serde_json::to_vec(&c).unwrap_or_default();
        assert!(serde_json::from_slice::<ImageConfiguration>(&bytes).is_ok());
    }
    // Descriptors as the store and the registry client read them.
    let _ = serde_json::from_slice::<imago_oci::BlobRef>(data);
}

/// Image references and digests: a parsed reference prints to a string that parses back
/// to the same reference, and its accessors never panic.
pub fn reference(data: &[u8]) {
    use imago_oci::{Digest, Reference};
    let text = String::from_utf8_lossy(data);
    let _ = text.parse::<Digest>();
    for r in [
        Reference::parse(&text),
        Reference::parse_without_default_tag(&text),
    ]
    .into_iter()
    .flatten()
    {
        let shown = r.to_string();
        match Reference::parse_without_default_tag(&shown) {
            Ok(again) => assert_eq!(again, r, "{text:?} printed as {shown:?}"),
            Err(e) => panic!("{text:?} printed as {shown:?}, which does not parse: {e}"),
        }
        let _ = (
            r.familiar(),
            r.familiar_name(),
            r.registry_endpoint(),
            r.name(),
        );
        let _ = (r.without_digest(), r.without_tag_or_digest());
        let _ = r.with_tag("t");
    }
}

/// The Dockerfile parser on any bytes: syntax tree + dump, typed model (+ error
/// rendering), expansion of every instruction, the global scope.
pub fn dockerfile(data: &[u8]) {
    use imago_dockerfile::*;
    let text = String::from_utf8_lossy(data);
    if let Ok(tree) = parse_syntax(&text, "Dockerfile") {
        let _ = dump(&tree);
    }
    match parse(&text, "Dockerfile") {
        Ok(df) => {
            let lex = ShellLex::new(df.escape);
            let env = vec![
                ("A".to_string(), "a b".to_string()),
                ("E".to_string(), String::new()),
            ];
            for st in &df.stages {
                for ins in &st.instructions {
                    let Ok(e) = ins.expand(&lex, &env) else {
                        continue;
                    };
                    if let InstructionKind::Expose(ports) = &e.kind {
                        for p in ports {
                            let _ = PortSpec::parse(p);
                        }
                    }
                    if let InstructionKind::Run(r) = &e.kind {
                        for m in &r.mounts {
                            let _ = Mount::parse(m);
                        }
                    }
                }
            }
            let host = Platform {
                os: "linux".into(),
                arch: "amd64".into(),
                variant: None,
            };
            let _ = GlobalScope::new(&df, &BuildArgs::new(), &Predefined::for_host(host));
        }
        Err(e) => {
            let _ = e.render();
        }
    }
}

/// The shell-lexer expander on any word, with an environment taken from the input: the
/// first line is `k=v` pairs separated by `;`, the rest is the word.
pub fn expand(data: &[u8]) {
    use imago_dockerfile::*;
    let text = String::from_utf8_lossy(data);
    let (vars, word) = text.split_once('\n').unwrap_or(("v=abc;e=", &text));
    let env: Vec<(String, String)> = vars
        .split(';')
        .filter_map(|kv| kv.split_once('='))
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    for esc in ['\\', '`'] {
        if let Ok(e) = ShellLex::new(esc).expand(word, &env) {
            assert!(e.result.len() <= MAX_EXPANDED_LEN, "expansion over its cap");
        }
    }
    let _ = ShellLex::for_heredoc('\\').expand_word(word, &env);
    let _ = Chmod::parse(word).map(|c| c.apply(0o644, false));
    let _ = parse_go_duration(word);
}

/// `.dockerignore`: the patterns are the text before the first empty line, the paths to
/// match are the lines after it (plus a few fixed ones).
pub fn ignore(data: &[u8]) {
    use imago_dockerfile::ignore::clean;
    use imago_dockerfile::DockerIgnore;
    let text = String::from_utf8_lossy(data);
    let (patterns, paths) = text.split_once("\n\n").unwrap_or((&text, ""));
    let Ok(ig) = DockerIgnore::parse(patterns, ".dockerignore") else {
        return;
    };
    let fixed = ["a", "a/b", "Dockerfile", "x/y/z.log", "", ".", "/", "../a"];
    for p in paths.lines().chain(fixed) {
        let _ = ig.is_excluded(p);
        let _ = clean(p);
        for pat in ig.patterns() {
            let _ = pat.matches(p);
        }
    }
}

/// Registry response headers: `WWW-Authenticate` challenges (each line one header), the
/// token scope they carry, `Content-Range`, and a token response body.
pub fn www_authenticate(data: &[u8]) {
    use imago_registry::auth::token::parse_token_response;
    use imago_registry::auth::{Challenge, Scope};
    let text = String::from_utf8_lossy(data);
    for line in text.lines().chain([text.as_ref()]) {
        if let Some(Challenge::Bearer {
            scope: Some(scope), ..
        }) = Challenge::parse(line)
        {
            let s = Scope::parse(&scope);
            let _ = parse_token_response(data, &s, std::time::Instant::now());
        }
        let _ = imago_registry::resume::parse_content_range(line);
    }
    let _ = parse_token_response(data, &Scope::parse("repository:a/b:pull"), {
        std::time::Instant::now()
    });
}

/// registries.conf (podman's v2 TOML) from a file, then the questions pull asks of it.
pub fn registries_conf(data: &[u8]) {
    use imago_oci::Reference;
    use imago_registry::RegistriesConf;
    let tmp = temp_dir();
    let path = tmp.path().join("registries.conf");
    if let Err(e) = std::fs::write(&path, data) {
        panic!("write {}: {e}", path.display());
    }
    let mut conf = RegistriesConf::default();
    if conf.merge_file(&path).is_err() {
        return;
    }
    for name in ["busybox", "example.com/a/b:1", "localhost:5000/x", "a"] {
        let _ = conf.qualify(name);
        if let Ok(r) = Reference::parse(name) {
            let _ = conf.endpoints(&r);
        }
    }
}

/// The squashfs reader on any file: open (superblock, tables, trailer), walk the tree
/// (bounded), read every inode and a few small files.
pub fn squash(data: &[u8]) {
    use imago_squash::{read_small, Archive};
    let tmp = temp_dir();
    let path = tmp.path().join("image.sqsh");
    if let Err(e) = std::fs::write(&path, data) {
        panic!("write {}: {e}", path.display());
    }
    let Ok(a) = Archive::open(&path) else {
        return;
    };
    let _ = a.config();
    let mut todo = vec![a.root()];
    let mut seen = 0usize;
    while let Some(r) = todo.pop() {
        seen += 1;
        if seen > 4096 {
            break;
        }
        let _ = a.inode(r);
        if let Ok(entries) = a.dir(r) {
            for e in entries.iter() {
                let _ = a.lookup(r, &e.name);
                if todo.len() < 4096 {
                    todo.push(e.inode);
                }
            }
        }
    }
    for p in ["/etc/passwd", "etc/group", "/", "a/../../b"] {
        let _ = read_small(&a, p, 1 << 20);
    }
}
