//! The parser on any bytes: syntax tree + dump, typed model (+ error rendering),
//! expansion of every instruction, and the same text as a .dockerignore.
#![no_main]

use imago_dockerfile::*;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
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
                    if let Ok(e) = ins.expand(&lex, &env) {
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
    if let Ok(ig) = DockerIgnore::parse(&text, ".dockerignore") {
        for p in ["a", "a/b", "Dockerfile", "x/y/z.log", ""] {
            let _ = ig.is_excluded(p);
        }
    }
});
