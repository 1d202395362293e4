//! One test per item of docs/semantics.md sections A–D and I that is about
//! parsing, expansion, scoping or .dockerignore; the item id is in the test name.
#![allow(clippy::unwrap_used)] // helpers outside #[test] fns panic on purpose

use imago_dockerfile::*;
use std::collections::BTreeMap;

fn df(text: &str) -> Dockerfile {
    parse(text, "Dockerfile").unwrap_or_else(|e| panic!("{}", e.render()))
}

fn err(text: &str) -> String {
    match parse(text, "Dockerfile") {
        Ok(d) => panic!("accepted: {d:?}"),
        Err(e) => e.to_string(),
    }
}

fn env(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

fn bargs(pairs: &[(&str, &str)]) -> BuildArgs {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect::<BTreeMap<_, _>>()
}

fn x(word: &str, e: &[(&str, &str)]) -> Result<String, ExpandError> {
    expand_word(word, &env(e))
}

fn predefined() -> Predefined {
    Predefined {
        target: Platform::parse("linux/arm64/v8").unwrap(),
        build: Platform::parse("linux/amd64").unwrap(),
        target_stage: None,
    }
}

/// Walks a stage the way the engine will: expand each instruction with the scope, apply.
fn run_stage(
    d: &Dockerfile,
    stage: usize,
    global: &GlobalScope,
    b: &BuildArgs,
    mut scope: StageScope,
) -> (StageScope, Vec<Instruction>) {
    let lex = ShellLex::new(d.escape);
    let mut out = Vec::new();
    for ins in &d.stages[stage].instructions {
        let e = ins.expand(&lex, &scope).unwrap();
        scope.apply(&e.kind, global, b).unwrap();
        out.push(e);
    }
    (scope, out)
}

// ---------------------------------------------------------------- A. parsing

#[test]
fn a01_keywords_are_case_insensitive() {
    let d = df("from busybox AS build\ncopy x /\nrun true\nfRoM scratch");
    assert_eq!(d.stages.len(), 2);
    assert_eq!(d.stages[0].name.as_deref(), Some("build"));
    assert!(matches!(
        d.stages[0].instructions[0].kind,
        InstructionKind::Copy(_)
    ));
    assert!(matches!(
        d.stages[0].instructions[1].kind,
        InstructionKind::Run(_)
    ));
}

#[test]
fn a02_unknown_instruction_with_suggestion() {
    let e = err("FROM x\nFNTRYPOINT [\"sh\"]");
    assert!(e.contains("unknown instruction: FNTRYPOINT"), "{e}");
    assert!(e.contains("did you mean ENTRYPOINT?"), "{e}");
    assert!(e.starts_with("Dockerfile:2:1:"), "{e}");
    let e = err("FROM x\nfoo bar");
    assert!(e.contains("unknown instruction: foo"), "{e}");
}

#[test]
fn a03_unknown_flag_with_suggestion() {
    let e = err("FROM x\nRUN --mont=target=/x,type=tmpfs true");
    assert!(e.contains("unknown flag: --mont"), "{e}");
    assert!(e.contains("did you mean mount?"), "{e}");
    let e = err("FROM x\nMAINTAINER --boo x");
    assert!(e.contains("unknown flag: --boo"), "{e}");
}

#[test]
fn a04_argument_count_errors() {
    for kw in ["WORKDIR", "USER", "STOPSIGNAL", "MAINTAINER"] {
        let e = err(&format!("FROM x\n{kw}"));
        assert!(
            e.contains(&format!("{kw} requires exactly one argument")),
            "{e}"
        );
    }
    for kw in ["ENV", "LABEL", "ONBUILD", "HEALTHCHECK", "EXPOSE", "VOLUME"] {
        let e = err(&format!("FROM x\n{kw}"));
        assert!(
            e.contains(&format!("{kw} requires at least one argument")),
            "{e}"
        );
    }
    let e = err("FROM x\nCOPY a");
    assert!(e.contains("COPY requires at least two arguments"), "{e}");
    let e = err("FROM x\nADD a");
    assert!(e.contains("ADD requires at least two arguments"), "{e}");
    // trailing whitespace, no backslash: no continuation
    let e = err("FROM x\nCOPY a   \n/dest");
    assert!(e.contains("COPY requires at least two arguments"), "{e}");
}

#[test]
fn a05_onbuild_restrictions() {
    let e = err("FROM x\nONBUILD ONBUILD RUN x");
    assert!(
        e.contains("Chaining ONBUILD via `ONBUILD ONBUILD` isn't allowed"),
        "{e}"
    );
    let e = err("FROM x\nONBUILD FROM y");
    assert!(
        e.contains("FROM isn't allowed as an ONBUILD trigger"),
        "{e}"
    );
    let e = err("FROM x\nONBUILD MAINTAINER me");
    assert!(
        e.contains("MAINTAINER isn't allowed as an ONBUILD trigger"),
        "{e}"
    );
    let d = df("FROM x\nonbuild run echo hi");
    let InstructionKind::Onbuild(o) = &d.stages[0].instructions[0].kind else {
        panic!()
    };
    assert_eq!(o.trigger, "run echo hi");
    assert!(matches!(o.instruction.kind, InstructionKind::Run(_)));
}

#[test]
fn a06_no_stages() {
    let e = err("ARG foo=bar");
    assert!(e.contains("dockerfile contains no stages to build"), "{e}");
    assert!(err("").contains("file with no instructions"));
    assert!(err("# only\n\n# comments\n").contains("file with no instructions"));
    let e = err("RUN x\nFROM y");
    assert!(e.contains("no build stage in current context"), "{e}");
}

#[test]
fn a07_directives_only_at_the_top() {
    let d = df("# SYNTAX=docker/dockerfile:1\n# escape=`\nFROM x\n# check=error=true\n");
    assert_eq!(d.directives.syntax.as_deref(), Some("docker/dockerfile:1"));
    assert_eq!(d.escape, '`');
    assert_eq!(
        d.directives.check, None,
        "a directive after an instruction is a comment"
    );
    // after a blank line or a comment, directives are comments
    let d = df("\n# escape=`\nFROM x");
    assert_eq!(d.escape, '\\');
    let d = df("# hello\n# escape=`\nFROM x");
    assert_eq!(d.escape, '\\');
    let e = err("# escape=`\n# escape=\\\nFROM x");
    assert!(
        e.contains("only one escape parser directive can be used"),
        "{e}"
    );
    assert!(err("# escape=x\nFROM x").contains("invalid escape token"));
}

#[test]
fn a08_backtick_escape() {
    let d = df("# escape=`\nFROM x\nRUN dir c:\\ `\n  && echo ok\nWORKDIR c:\\windows");
    let ins = &d.stages[0].instructions;
    assert_eq!(
        ins[0].kind,
        InstructionKind::Run(Run {
            command: CommandLine::Shell("dir c:\\   && echo ok".into()),
            mounts: vec![],
            network: None,
            security: None,
            heredocs: vec![]
        })
    );
    let e = ins[1].expand(&ShellLex::new(d.escape), &NoVars).unwrap();
    assert_eq!(e.kind, InstructionKind::Workdir("c:\\windows".into()));
}

#[test]
fn a09_syntax_directive_is_recorded_and_ignored() {
    // ibuild's choice: the frontend image is never pulled; the value is kept so the
    // engine can warn about it.
    let d = df("# syntax=docker.io/docker/dockerfile:1.7\nFROM x");
    assert_eq!(
        d.directives.syntax.as_deref(),
        Some("docker.io/docker/dockerfile:1.7")
    );
}

#[test]
fn a10_check_directive_is_recorded() {
    let d = df("# check=skip=all;error=true\nFROM x");
    assert_eq!(d.directives.check.as_deref(), Some("skip=all;error=true"));
}

#[test]
fn a11_exec_form_needs_valid_json() {
    let d = df("FROM x\nRUN ['a']\nENTRYPOINT []random string\nRUN [\"echo\",\"hello\"]this is invalid\nCMD [\"a\", \"b\"]");
    let k: Vec<&InstructionKind> = d.stages[0].instructions.iter().map(|i| &i.kind).collect();
    assert!(
        matches!(k[0], InstructionKind::Run(Run { command: CommandLine::Shell(s), .. }) if s == "['a']")
    );
    assert_eq!(
        *k[1],
        InstructionKind::Entrypoint(CommandLine::Shell("[]random string".into()))
    );
    assert!(
        matches!(k[2], InstructionKind::Run(Run { command: CommandLine::Shell(s), .. }) if s == "[\"echo\",\"hello\"]this is invalid")
    );
    assert_eq!(
        *k[3],
        InstructionKind::Cmd(CommandLine::Exec(vec!["a".into(), "b".into()]))
    );
}

#[test]
fn a12_json_with_non_strings_is_an_error() {
    let e = err("FROM x\nCMD [ \"echo\", [ \"nested json\" ] ]");
    assert!(
        e.contains("arrays must be comprised of strings only"),
        "{e}"
    );
    assert!(err("FROM x\nRUN [1]").contains("strings only"));
}

#[test]
fn a13_only_whole_line_comments() {
    let d = df("FROM x\nRUN echo a # b\nRUN echo \\\n# comment\n\n  more\n");
    let k: Vec<&InstructionKind> = d.stages[0].instructions.iter().map(|i| &i.kind).collect();
    assert!(
        matches!(k[0], InstructionKind::Run(Run { command: CommandLine::Shell(s), .. }) if s == "echo a # b")
    );
    assert!(
        matches!(k[1], InstructionKind::Run(Run { command: CommandLine::Shell(s), .. }) if s == "echo   more")
    );
    assert_eq!(d.warnings.len(), 1);
    assert!(d.warnings[0].message.contains("Empty continuation line"));
    assert_eq!(d.stages[0].instructions[1].span, Span::new(3, 6, 1));
}

// ---------------------------------------------------------------- B. expansion

#[test]
fn b14_dollar_and_braces() {
    let e = [("v", "x")];
    assert_eq!(x("$v-${v}", &e).unwrap(), "x-x");
    assert_eq!(x("he${hi}xx", &e).unwrap(), "hexx");
    assert_eq!(x("$hi", &e).unwrap(), "");
}

#[test]
fn b15_default_forms() {
    let e = [("empty", ""), ("set", "s")];
    assert_eq!(x("${empty:-w}", &e).unwrap(), "w");
    assert_eq!(x("${empty-w}", &e).unwrap(), "");
    assert_eq!(x("${unset-w}", &e).unwrap(), "w");
    assert_eq!(x("${set:-w}", &e).unwrap(), "s");
}

#[test]
fn b16_alternate_forms() {
    let e = [("empty", ""), ("set", "s")];
    assert_eq!(x("${set:+w}", &e).unwrap(), "w");
    assert_eq!(x("${empty:+w}", &e).unwrap(), "");
    assert_eq!(x("${empty+w}", &e).unwrap(), "w");
    assert_eq!(x("${unset+w}", &e).unwrap(), "");
}

#[test]
fn b17_required_forms() {
    let e = [("empty", "")];
    assert!(x("${unset:?}", &e).is_err());
    assert!(x("${empty:?}", &e).is_err());
    assert_eq!(x("${empty?}", &e).unwrap(), "");
    assert!(x("${unset?}", &e).is_err());
    let d = df("ARG FOO=${FOO:?\"custom error\"}\nFROM x");
    let e = GlobalScope::new(&d, &BuildArgs::new(), &predefined()).unwrap_err();
    assert!(e.to_string().contains("FOO: custom error"), "{e}");
    let g = GlobalScope::new(&d, &bargs(&[("FOO", "ok")]), &predefined()).unwrap();
    assert_eq!(g.value("FOO"), Some("ok"));
}

#[test]
fn b18_nested_defaults() {
    assert_eq!(x("${XXX:-${YYY:-yyy}}", &[]).unwrap(), "yyy");
    assert_eq!(x("${XXX:-$P}", &[("P", "/p")]).unwrap(), "/p");
}

#[test]
fn b19_backslash_escapes() {
    assert_eq!(x("\\$PWD", &[("PWD", "/home")]).unwrap(), "$PWD");
    assert_eq!(x("\\${}", &[]).unwrap(), "${}");
    assert_eq!(x("abc\\tdef", &[]).unwrap(), "abctdef");
}

#[test]
fn b20_quotes() {
    let e = [("PWD", "/home")];
    assert_eq!(x("'$PWD'", &e).unwrap(), "$PWD");
    assert_eq!(x("'\\$PWD'", &e).unwrap(), "\\$PWD");
    assert_eq!(x("\"he'$PWD'\"", &e).unwrap(), "he'/home'");
}

#[test]
fn b21_expansion_errors() {
    for w in [
        "\"hello", "'hello", "${}", "${PWD", "${.}", "${:-x}", "${v:=x}", "${v:YYY}",
    ] {
        assert!(x(w, &[("v", "1"), ("PWD", "/")]).is_err(), "{w}");
    }
    let e = x("${v:=x}", &[]).unwrap_err();
    assert_eq!(
        e.to_string(),
        "failed to process \"${v:=x}\": unsupported modifier (:=) in substitution"
    );
}

#[test]
fn b22_positional_and_special_parameters() {
    for w in [
        "$1", "${999}", "$@", "$*", "$#", "$?", "$-", "$$", "$!", "$0",
    ] {
        assert_eq!(x(w, &[]).unwrap(), "", "{w}");
    }
    assert_eq!(x("$999aaa", &[]).unwrap(), "aaa");
    assert_eq!(x("$@@@", &[]).unwrap(), "@@");
    assert_eq!(x("$.", &[]).unwrap(), "$.");
}

#[test]
fn b23_pattern_operators() {
    let d = df("ARG image=idlebox\nFROM busy${image#idle}");
    let g = GlobalScope::new(&d, &BuildArgs::new(), &predefined()).unwrap();
    assert_eq!(g.expand_from(&d.stages[0], d.escape).unwrap().0, "busybox");
    assert_eq!(x("${my_arg%%e*}", &[("my_arg", "def_val")]).unwrap(), "d");
    let e = [("p", "a*b?c")];
    assert_eq!(x("${p#*\\*}", &e).unwrap(), "b?c");
    assert_eq!(x("${p/\\?/-}", &e).unwrap(), "a*b-c");
    assert_eq!(x("${p//?/.}", &e).unwrap(), ".....");
    assert_eq!(x("${p%\\?*}", &e).unwrap(), "a*b");
}

#[test]
fn b24_word_splitting_for_expose() {
    let d = df("FROM x\nEXPOSE hello${space}bye hello\"${space}\"bye");
    let lex = ShellLex::new(d.escape);
    let e = d.stages[0].instructions[0]
        .expand(&lex, &env(&[("space", "abc  def")]))
        .unwrap();
    assert_eq!(
        e.kind,
        InstructionKind::Expose(vec![
            "helloabc".into(),
            "defbye".into(),
            "helloabc  defbye".into()
        ])
    );
    // COPY sources are single words in BuildKit: no splitting
    let d = df("FROM x\nCOPY $f /d/");
    let e = d.stages[0].instructions[0]
        .expand(&lex, &env(&[("f", "a b")]))
        .unwrap();
    let InstructionKind::Copy(c) = e.kind else {
        panic!()
    };
    assert_eq!(c.sources, [Source::Path("a b".into())]);
}

#[test]
fn b25_value_fixed_for_the_instruction() {
    let d = df("FROM x\nENV abc=hello\nENV abc=bye def=$abc");
    let g = GlobalScope::default();
    let (scope, _) = run_stage(&d, 0, &g, &BuildArgs::new(), StageScope::new());
    assert_eq!(scope.env(), &env(&[("abc", "bye"), ("def", "hello")])[..]);
}

#[test]
fn b26_run_cmd_entrypoint_are_not_expanded() {
    let d = df("FROM x\nRUN echo $HOME\nRUN [\"echo\",\"$HOME\"]\nCMD $X\nENTRYPOINT [\"$X\"]");
    let lex = ShellLex::new('\\');
    let e = env(&[("HOME", "/root"), ("X", "x")]);
    for ins in &d.stages[0].instructions {
        assert_eq!(ins.expand(&lex, &e).unwrap(), *ins);
    }
}

#[test]
fn b27_flags_are_expanded() {
    let d = df(concat!(
        "FROM --platform=$BUILDPLATFORM x\n",
        "COPY --chown=${owner}:${group} --chmod=${mode} a b\n",
        "ADD --checksum=${DIGEST} https://e/x /x\n",
        "RUN --mount=type=$T,target=$P,id=$ID true\n"
    ));
    let e = env(&[
        ("owner", "1000"),
        ("group", "nobody"),
        ("mode", "0644"),
        ("DIGEST", "sha256:abc"),
        ("T", "cache"),
        ("P", "/c"),
        ("ID", "i"),
    ]);
    let lex = ShellLex::new('\\');
    let ins = &d.stages[0].instructions;
    let InstructionKind::Copy(c) = ins[0].expand(&lex, &e).unwrap().kind else {
        panic!()
    };
    assert_eq!(
        (c.chown.as_deref(), c.chmod.as_deref()),
        (Some("1000:nobody"), Some("0644"))
    );
    assert_eq!(
        Chmod::parse(c.chmod.as_deref().unwrap()),
        Ok(Chmod::Octal(0o644))
    );
    let InstructionKind::Add(a) = ins[1].expand(&lex, &e).unwrap().kind else {
        panic!()
    };
    assert_eq!(a.checksum.as_deref(), Some("sha256:abc"));
    let InstructionKind::Run(r) = ins[2].expand(&lex, &e).unwrap().kind else {
        panic!()
    };
    let m = Mount::parse(&r.mounts[0]).unwrap();
    assert_eq!(
        (m.kind, m.target.as_deref(), m.id.as_deref()),
        (MountType::Cache, Some("/c"), Some("i"))
    );
    let g = GlobalScope::new(&d, &BuildArgs::new(), &predefined()).unwrap();
    let (_, platform) = g.expand_from(&d.stages[0], d.escape).unwrap();
    assert_eq!(platform.as_deref(), Some("linux/amd64"));
}

#[test]
fn b28_copy_from_is_not_expanded() {
    let e = err("FROM x\nCOPY --from=$FOO a b");
    assert!(
        e.contains("variable expansion is not supported for --from"),
        "{e}"
    );
}

#[test]
fn b29_non_ascii() {
    assert_eq!(x("안녕${PWD}", &[("PWD", "/home")]).unwrap(), "안녕/home");
    let d = df("FROM x\nLABEL 설명=\"한국어 값\"");
    let e = d.stages[0].instructions[0]
        .expand(&ShellLex::new('\\'), &NoVars)
        .unwrap();
    assert_eq!(
        e.kind,
        InstructionKind::Label(vec![KeyValue {
            key: "설명".into(),
            value: "한국어 값".into(),
            legacy: false
        }])
    );
}

// ---------------------------------------------------------------- C. ARG

#[test]
fn c30_global_args_only_in_from() {
    let d = df("ARG tag=latest\nFROM busybox:${tag}\nRUN echo $tag\nWORKDIR /$tag");
    let g = GlobalScope::new(&d, &BuildArgs::new(), &predefined()).unwrap();
    assert_eq!(
        g.expand_from(&d.stages[0], d.escape).unwrap().0,
        "busybox:latest"
    );
    let (scope, out) = run_stage(&d, 0, &g, &BuildArgs::new(), StageScope::new());
    assert_eq!(out[1].kind, InstructionKind::Workdir("/".into()));
    assert!(scope.run_env(&BuildArgs::new()).is_empty());
}

#[test]
fn c31_redeclare_global_in_stage() {
    let d = df("ARG a1=\"foo bar\"\nFROM x\nARG a1\nWORKDIR /$a1");
    let g = GlobalScope::new(&d, &BuildArgs::new(), &predefined()).unwrap();
    let (scope, out) = run_stage(&d, 0, &g, &BuildArgs::new(), StageScope::new());
    assert_eq!(out[1].kind, InstructionKind::Workdir("/foo bar".into()));
    assert_eq!(scope.run_env(&BuildArgs::new()), env(&[("a1", "foo bar")]));
    // with a build arg, the global takes it
    let b = bargs(&[("a1", "cli")]);
    let g = GlobalScope::new(&d, &b, &predefined()).unwrap();
    let (scope, _) = run_stage(&d, 0, &g, &b, StageScope::new());
    assert_eq!(scope.run_env(&b), env(&[("a1", "cli")]));
}

#[test]
fn c32_globals_use_earlier_globals() {
    let d = df("ARG a1=box\nARG a2=\"$a1-foo\"\nFROM busy$a1:$a2");
    let g = GlobalScope::new(&d, &BuildArgs::new(), &predefined()).unwrap();
    assert_eq!(g.value("a2"), Some("box-foo"));
    assert_eq!(
        g.expand_from(&d.stages[0], '\\').unwrap().0,
        "busybox:box-foo"
    );
}

#[test]
fn c33_stage_defaults_use_earlier_args() {
    let d = df("FROM x\nARG a3=abc\nARG a4=\"123 456\" a5=$a3-x");
    let (scope, _) = run_stage(
        &d,
        0,
        &GlobalScope::default(),
        &BuildArgs::new(),
        StageScope::new(),
    );
    assert_eq!(
        scope.run_env(&BuildArgs::new()),
        env(&[("a3", "abc"), ("a4", "123 456"), ("a5", "abc-x")])
    );
}

#[test]
fn c34_build_arg_overrides_default() {
    let d = df("FROM x\nARG a=def\nARG e=def\nWORKDIR /${e:-fallback}");
    let b = bargs(&[("a", "cli"), ("e", "")]);
    let (scope, out) = run_stage(&d, 0, &GlobalScope::default(), &b, StageScope::new());
    assert_eq!(scope.run_env(&b), env(&[("a", "cli"), ("e", "")]));
    assert_eq!(out[2].kind, InstructionKind::Workdir("/fallback".into()));
}

#[test]
fn c35_arg_without_value_is_absent() {
    let d = df("FROM x\nARG FOO\nARG BAR=");
    let (scope, _) = run_stage(
        &d,
        0,
        &GlobalScope::default(),
        &BuildArgs::new(),
        StageScope::new(),
    );
    assert_eq!(scope.run_env(&BuildArgs::new()), env(&[("BAR", "")]));
}

#[test]
fn c36_reference_before_declaration_is_empty() {
    let d = df("FROM x\nWORKDIR /a$V\nARG V\nWORKDIR /b$V");
    let b = bargs(&[("V", "v")]);
    let (_, out) = run_stage(&d, 0, &GlobalScope::default(), &b, StageScope::new());
    assert_eq!(out[0].kind, InstructionKind::Workdir("/a".into()));
    assert_eq!(out[2].kind, InstructionKind::Workdir("/bv".into()));
}

#[test]
fn c37_args_in_run_env_not_image_env() {
    let d = df("FROM x\nARG A=1\nENV E=2");
    let (scope, _) = run_stage(
        &d,
        0,
        &GlobalScope::default(),
        &BuildArgs::new(),
        StageScope::new(),
    );
    assert_eq!(scope.env(), &env(&[("E", "2")])[..]);
    assert_eq!(
        scope.run_env(&BuildArgs::new()),
        env(&[("E", "2"), ("A", "1")])
    );
}

#[test]
fn c38_env_wins_over_arg() {
    let d = df("FROM x\nARG V\nENV V=v1\nWORKDIR /$V");
    let b = bargs(&[("V", "v2")]);
    let (scope, out) = run_stage(&d, 0, &GlobalScope::default(), &b, StageScope::new());
    assert_eq!(out[2].kind, InstructionKind::Workdir("/v1".into()));
    assert_eq!(scope.run_env(&b), env(&[("V", "v1")]));
}

#[test]
fn c39_args_inherited_by_child_stages_only() {
    let d = df(
        "FROM x AS base\nARG A=1\nFROM base AS child\nWORKDIR /$A\nFROM x AS other\nWORKDIR /$A",
    );
    let g = GlobalScope::default();
    let b = BuildArgs::new();
    let (base_scope, _) = run_stage(&d, 0, &g, &b, StageScope::new());
    // the engine picks the parent's scope when FROM names a stage
    assert_eq!(d.stage(&d.stages[1].base).map(|s| s.index), Some(0));
    let (_, child) = run_stage(&d, 1, &g, &b, base_scope.clone());
    assert_eq!(child[0].kind, InstructionKind::Workdir("/1".into()));
    let (_, other) = run_stage(&d, 2, &g, &b, StageScope::new());
    assert_eq!(other[0].kind, InstructionKind::Workdir("/".into()));
}

#[test]
fn c40_proxy_args_reach_run_without_declaration() {
    let d = df("FROM x\nRUN env");
    let b = bargs(&[
        ("http_proxy", "http://p:3128"),
        ("NO_PROXY", "local"),
        ("OTHER", "x"),
    ]);
    let (scope, _) = run_stage(&d, 0, &GlobalScope::default(), &b, StageScope::new());
    let run_env = scope.run_env(&b);
    assert!(run_env.contains(&("http_proxy".into(), "http://p:3128".into())));
    assert!(run_env.contains(&("NO_PROXY".into(), "local".into())));
    assert!(!run_env.iter().any(|(k, _)| k == "OTHER"));
    assert!(scope::is_proxy_arg("HTTPS_PROXY") && !scope::is_proxy_arg("OTHER"));
}

#[test]
fn c41_platform_args() {
    let d = df("FROM build-${TARGETOS}-${TARGETARCH}${TARGETVARIANT:+-$TARGETVARIANT}\nWORKDIR /$BUILDARCH\nARG TARGETPLATFORM\nWORKDIR /$TARGETPLATFORM");
    let g = GlobalScope::new(&d, &BuildArgs::new(), &predefined()).unwrap();
    assert_eq!(
        g.expand_from(&d.stages[0], '\\').unwrap().0,
        "build-linux-arm64-v8"
    );
    let (_, out) = run_stage(&d, 0, &g, &BuildArgs::new(), StageScope::new());
    assert_eq!(out[0].kind, InstructionKind::Workdir("/".into()));
    assert_eq!(
        out[2].kind,
        InstructionKind::Workdir("/linux/arm64/v8".into())
    );
}

#[test]
fn c42_targetstage() {
    let d = df("FROM x AS foo\nFROM x AS bar\nARG TARGETSTAGE\nWORKDIR /$TARGETSTAGE");
    assert_eq!(Predefined::target_stage_name(&d, Some("FOO")), "foo");
    assert_eq!(Predefined::target_stage_name(&d, None), "bar");
    assert_eq!(
        Predefined::target_stage_name(&df("FROM x"), None),
        "default"
    );
    let mut p = predefined();
    p.target_stage = Some(Predefined::target_stage_name(&d, None));
    let g = GlobalScope::new(&d, &BuildArgs::new(), &p).unwrap();
    let (_, out) = run_stage(&d, 1, &g, &BuildArgs::new(), StageScope::new());
    assert_eq!(out[1].kind, InstructionKind::Workdir("/bar".into()));
}

// ---------------------------------------------------------------- D. ENV

#[test]
fn d43_env_key_value_pairs() {
    let d = df("FROM x\nENV D=Rex\\ The\\ Dog N=\"John Doe\" K=v");
    let (scope, _) = run_stage(
        &d,
        0,
        &GlobalScope::default(),
        &BuildArgs::new(),
        StageScope::new(),
    );
    assert_eq!(
        scope.env(),
        &env(&[("D", "Rex The Dog"), ("N", "John Doe"), ("K", "v")])[..]
    );
}

#[test]
fn d44_env_legacy_form() {
    let d = df("FROM x\nENV ONE TWO= THREE=world");
    let InstructionKind::Env(kv) = &d.stages[0].instructions[0].kind else {
        panic!()
    };
    assert!(kv[0].legacy);
    let (scope, _) = run_stage(
        &d,
        0,
        &GlobalScope::default(),
        &BuildArgs::new(),
        StageScope::new(),
    );
    assert_eq!(scope.env(), &env(&[("ONE", "TWO= THREE=world")])[..]);
    assert!(err("FROM x\nENV PATH").contains("ENV must have two arguments"));
}

#[test]
fn d45_env_replaced_in_place() {
    let d = df("FROM x\nENV A=1 B=2\nENV A=3");
    let scope = StageScope::with_image_env(["PATH=/bin", "A=0"]);
    let (scope, _) = run_stage(&d, 0, &GlobalScope::default(), &BuildArgs::new(), scope);
    assert_eq!(
        scope.env(),
        &env(&[("PATH", "/bin"), ("A", "3"), ("B", "2")])[..]
    );
}

// ---------------------------------------------------------------- I. .dockerignore

fn ignore(text: &str) -> DockerIgnore {
    DockerIgnore::parse(text, ".dockerignore").unwrap()
}

#[test]
fn i98_dockerignore_exceptions_later_rules_win() {
    let ig = ignore("ba*\nDockerfile\n!bay\n.dockerignore\n");
    let kept: Vec<&str> = ["foo", "bar", "baz", "bay", "Dockerfile", ".dockerignore"]
        .into_iter()
        .filter(|p| !ig.is_excluded(p))
        .collect();
    assert_eq!(kept, ["foo", "bay"]);
    assert!(ig.has_exclusions());
}

#[test]
fn i99_invalid_ignore_file() {
    let e = DockerIgnore::parse("foo\n!\n", ".dockerignore").unwrap_err();
    assert_eq!(e.line, 2);
    assert!(e.to_string().contains("illegal exclusion pattern"), "{e}");
    let e = DockerIgnore::parse("a[b\n", ".dockerignore").unwrap_err();
    assert!(e.to_string().contains("syntax error in pattern"), "{e}");
}

#[test]
fn i100_dockerfile_specific_ignore_file() {
    assert_eq!(
        ignore_file_candidates("Dockerfile2"),
        [
            "Dockerfile2.dockerignore".to_string(),
            ".containerignore".to_string(),
            ".dockerignore".to_string()
        ]
    );
    assert_eq!(
        ignore_file_candidates("sub/app.Dockerfile")[0],
        "sub/app.Dockerfile.dockerignore"
    );
}

#[test]
fn i101_pattern_rules() {
    let ig = ignore("# comment\n/abs\n./dot/\n**/*.log\nsrc/**/gen\ndocs/**\n*.tmp\n[a-c]?.md\n!keep.log\n  spaced  \n");
    for excluded in [
        "abs",
        "abs/child",
        "dot",
        "dot/x",
        "x.log",
        "a/b/c.log",
        "src/gen",
        "src/a/b/gen",
        "docs/x/y",
        "f.tmp",
        "b1.md",
        "spaced",
    ] {
        assert!(ig.is_excluded(excluded), "{excluded} should be excluded");
    }
    for kept in [
        "# comment",
        "keep.log",
        "d1.md",
        "sub/f.tmp",
        "src/gen2",
        "docs",
        "absx",
    ] {
        assert!(!ig.is_excluded(kept), "{kept} should be kept");
    }
    // a leading `#` only comments at column 1; `**` alone matches everything
    assert!(ignore(" #x").is_excluded("#x"));
    assert!(ignore("**").is_excluded("any/thing"));
    assert!(ignore("**/foo").is_excluded("foo"));
    assert!(ignore("**/foo").is_excluded("a/foo/b"));
    assert!(ignore("a\\*b").is_excluded("a*b"));
    assert!(!ignore("a\\*b").is_excluded("axb"));
}
