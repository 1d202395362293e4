//! The model's tests: lowering, flags, expansion and suggestions through `crate::parse`.

use std::time::Duration;

use super::*;
use crate::error::{ParseError, ParseErrorKind as K};
use crate::expand::ShellLex;

#[test]
fn an_instructions_words_share_one_budget() {
    // Each word is under the limit; together they are not.
    let x = "x".repeat(crate::MAX_EXPANDED_LEN / 2 + 1);
    let env = vec![("X".to_string(), x)];
    let df = crate::parse("FROM x\nLABEL a=$X\nLABEL a=$X b=$X c=$X\n", "Dockerfile").unwrap();
    let lex = ShellLex::new('\\');
    df.stages[0].instructions[0].expand(&lex, &env).unwrap();
    let e = df.stages[0].instructions[1].expand(&lex, &env).unwrap_err();
    assert_eq!(e.word, "$X");
    assert!(
        matches!(e.kind, crate::ExpandErrorKind::TooLong { .. }),
        "{e}"
    );
}
use crate::parse;

fn first(text: &str) -> InstructionKind {
    let d = parse(&format!("FROM x\n{text}"), "Dockerfile")
        .unwrap_or_else(|e| panic!("{}", e.render()));
    d.stages[0].instructions[0].kind.clone()
}

fn err(text: &str) -> ParseError {
    parse(&format!("FROM x\n{text}"), "Dockerfile").unwrap_err()
}

#[test]
fn copy_heredoc_sources() {
    let k =
        first("COPY --chmod=755 <<EOF <<-\"EOT\" file /dest/\nhello $name\nEOF\n\tx $y\n\tEOT\n");
    let InstructionKind::Copy(c) = k else {
        panic!()
    };
    assert_eq!(
        c.sources,
        [
            Source::Heredoc {
                name: "EOF".into(),
                content: "hello $name\n".into(),
                expand: true
            },
            Source::Heredoc {
                name: "EOT".into(),
                content: "x $y\n".into(),
                expand: false
            },
            Source::Path("file".into()),
        ]
    );
    assert_eq!(c.chmod.as_deref(), Some("755"));
    let env = vec![
        ("name".to_string(), "world".to_string()),
        ("y".to_string(), "Y".to_string()),
    ];
    let d = parse(
        "FROM x\nCOPY <<EOF <<'EOT' /d/\nhi \"$name\" \\$x\nEOF\n$y\nEOT\n",
        "D",
    )
    .unwrap();
    let e = d.stages[0].instructions[0]
        .expand(&ShellLex::new('\\'), &env)
        .unwrap();
    let InstructionKind::Copy(c) = e.kind else {
        panic!()
    };
    assert_eq!(
        c.sources[..2],
        [
            Source::Heredoc {
                name: "EOF".into(),
                content: "hi \"world\" $x\n".into(),
                expand: false
            },
            Source::Heredoc {
                name: "EOT".into(),
                content: "$y\n".into(),
                expand: false
            },
        ]
    );
}

#[test]
fn run_heredoc_and_flags() {
    let k = first("RUN --mount=type=cache,target=/c --network=none <<EOF\necho\nEOF\n");
    let InstructionKind::Run(r) = k else { panic!() };
    assert_eq!(r.mounts, ["type=cache,target=/c"]);
    assert_eq!(r.network.as_deref(), Some("none"));
    assert_eq!(r.heredocs.len(), 1);
    assert_eq!(r.command, CommandLine::Shell("<<EOF".into()));
}

#[test]
fn healthcheck() {
    let k =
        first("HEALTHCHECK --interval=5m --timeout=3s --retries=3 CMD curl -f http://x/ || exit 1");
    let InstructionKind::Healthcheck(h) = k else {
        panic!()
    };
    assert_eq!(h.test(), ["CMD-SHELL", "curl -f http://x/ || exit 1"]);
    let Healthcheck::Check {
        interval,
        timeout,
        retries,
        start_period,
        ..
    } = h
    else {
        panic!()
    };
    assert_eq!(interval, Some(Duration::from_secs(300)));
    assert_eq!(timeout, Some(Duration::from_secs(3)));
    assert_eq!((retries, start_period), (Some(3), None));
    let k = first("healthcheck cmd [\"/bin/check\", \"-q\"]");
    let InstructionKind::Healthcheck(h) = k else {
        panic!()
    };
    assert_eq!(h.test(), ["CMD", "/bin/check", "-q"]);
    assert_eq!(
        first("HEALTHCHECK NONE"),
        InstructionKind::Healthcheck(Healthcheck::None)
    );
    let e = err("HEALTHCHECK --interval=500us CMD x");
    assert!(e.to_string().contains("cannot be less than 1ms"), "{e}");
    assert!(err("HEALTHCHECK --retries=-1 CMD x")
        .to_string()
        .contains("cannot be negative"));
    assert!(err("HEALTHCHECK CMD")
        .to_string()
        .contains("Missing command"));
    assert!(err("HEALTHCHECK FOO x")
        .to_string()
        .contains("Unknown type"));
    assert!(err("HEALTHCHECK --interval=5 CMD x")
        .to_string()
        .contains("invalid duration"));
}

#[test]
fn flag_errors() {
    let e = err("COPY --from=a --from=b x y");
    assert_eq!(
        (e.kind, e.line, e.column),
        (K::DuplicateFlag("from".into()), 2, 15)
    );
    let e = err("RUN --mont=x true");
    assert_eq!((e.line, e.column), (2, 5));
    assert_eq!(
        err("COPY --from x y").kind,
        K::MissingFlagValue("from".into())
    );
    assert_eq!(
        err("COPY --link= x y").kind,
        K::MissingFlagValue("link".into())
    );
    assert!(matches!(
        err("COPY --link=maybe x y").kind,
        K::InvalidFlagValue { .. }
    ));
    let InstructionKind::Copy(c) = first("COPY --link=false --exclude=a --exclude=*.b x y") else {
        panic!()
    };
    assert!(!c.link);
    assert_eq!(c.exclude, ["a", "*.b"]);
    let InstructionKind::Add(a) =
        first("ADD --keep-git-dir --unpack=false --checksum=sha256:0 x y")
    else {
        panic!()
    };
    assert!(a.keep_git_dir && a.unpack == Some(false));
    assert!(matches!(
        err("ADD --from=x a b").kind,
        K::UnknownFlag { .. }
    ));
    assert!(err("COPY --chmod=64a a b")
        .to_string()
        .contains("invalid chmod parameter: '64a'"));
}

#[test]
fn misc_validation() {
    assert!(err("SHELL /bin/sh -c").to_string().contains("JSON form"));
    assert!(err("VOLUME [\"\"]")
        .to_string()
        .contains("can not be an empty string"));
    assert!(err("COPY http://x/y /z")
        .to_string()
        .contains("source can't be a URL for COPY"));
    assert!(err("COPY a <<EOF\nx\nEOF")
        .to_string()
        .contains("heredoc as a destination"));
    assert!(err("ENV =x").to_string().contains("names can not be blank"));
    assert!(err("ARG =x").to_string().contains("names can not be blank"));
    assert!(err("LABEL a=b c")
        .to_string()
        .contains("can't find = in \"c\""));
    let e = parse("FROM a b", "Dockerfile").unwrap_err();
    assert!(
        e.to_string().contains("either one or three arguments"),
        "{e}"
    );
    let e = parse("FROM a AS 1x", "Dockerfile").unwrap_err();
    assert!(
        e.to_string().contains("invalid name for build stage"),
        "{e}"
    );
    let e = parse("FROM a AS x\nFROM b AS X", "Dockerfile").unwrap_err();
    assert_eq!((e.kind, e.line), (K::DuplicateStageName("x".into()), 2));
}

#[test]
fn stages_and_lookup() {
    let d = parse(
        "ARG V=1\nFROM --platform=$P a AS Build\nRUN x\nFROM build\n",
        "Dockerfile",
    )
    .unwrap();
    assert_eq!(
        d.meta_args[0].args,
        [ArgDecl {
            name: "V".into(),
            default: Some("1".into())
        }]
    );
    assert_eq!(d.stages[0].platform.as_deref(), Some("$P"));
    assert_eq!(d.stage("BUILD").map(|s| s.index), Some(0));
    assert_eq!(d.stage("1").map(|s| s.base.as_str()), Some("build"));
    assert_eq!(d.stage("2"), None);
    assert_eq!(d.suggest_stage("bulid").as_deref(), Some("build"));
    assert_eq!(d.stages[1].name_or_index(), "1");
}

#[test]
fn onbuild_trigger_text() {
    let k = first("ONBUILD COPY <<EOF /f\nbody\nEOF\n");
    let InstructionKind::Onbuild(o) = k else {
        panic!()
    };
    assert_eq!(o.trigger, "COPY <<EOF /f\nbody\nEOF");
    let InstructionKind::Copy(c) = &o.instruction.kind else {
        panic!()
    };
    assert_eq!(
        c.sources[0],
        Source::Heredoc {
            name: "EOF".into(),
            content: "body\n".into(),
            expand: true
        }
    );
}

#[test]
fn error_render_shows_the_line() {
    let e = parse("FROM x\n  RUNN echo\n", "Dockerfile").unwrap_err();
    assert_eq!(
        e.to_string(),
        "Dockerfile:2:3: unknown instruction: RUNN (did you mean RUN?)"
    );
    let r = e.render();
    assert!(
        r.contains("error: unknown instruction: RUNN (did you mean RUN?)"),
        "{r}"
    );
    assert!(r.contains("--> Dockerfile:2:3"), "{r}");
    assert!(r.contains("2 |   RUNN echo"), "{r}");
    assert!(r.contains("^ expected a Dockerfile instruction"), "{r}");
}
