//! The stage graph: which stage is the target, what each stage's FROM and `--from`
//! names mean (an earlier stage by name or index, `scratch`, or an image), which stages
//! the target needs (only those are built, docs/semantics.md item 53), and in what order.
//!
//! Never: expands variables (the engine hands in expanded FROM text), reads files.
//!
//! Numbers in parentheses, e.g. (76), are items of docs/semantics.md.

/// What the graph needs to know of one stage.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StageInfo {
    /// `AS name`, as written.
    pub name: Option<String>,
    /// The FROM reference after expansion.
    pub base: String,
    /// Every `COPY --from=X` / `RUN --mount=from=X` of the stage: the text and the line.
    pub from_refs: Vec<(String, u32)>,
    /// The line of the FROM instruction.
    pub line: u32,
}

/// What a FROM or a `--from` names.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Source {
    /// The empty root.
    Scratch,
    /// A stage of this Dockerfile, by index.
    Stage(usize),
    /// An image reference (store first, then a registry).
    Image(String),
}

/// The stage graph could not be resolved.
#[derive(Debug, Clone, thiserror::Error, PartialEq, Eq)]
pub enum StageError {
    #[error("dockerfile contains no stages to build")]
    NoStages,
    #[error("target stage \"{target}\" could not be found{}", suggestion(.hint))]
    UnknownTarget {
        target: String,
        hint: Option<String>,
    },
    #[error("line {line}: cannot copy from stage \"{from}\", it needs to be defined before current stage \"{current}\"")]
    Later {
        from: String,
        current: String,
        line: u32,
    },
    #[error("line {line}: circular dependency detected on stage: {stage}")]
    Cycle { stage: String, line: u32 },
    #[error("line {line}: base name (FROM) should not be blank")]
    EmptyBase { line: u32 },
}

fn suggestion(hint: &Option<String>) -> String {
    hint.as_ref()
        .map(|h| format!(" (did you mean {h}?)"))
        .unwrap_or_default()
}

/// The display name of stage `i` (its name, else its index).
pub fn stage_label(stages: &[StageInfo], i: usize) -> String {
    stages
        .get(i)
        .and_then(|s| s.name.clone())
        .unwrap_or_else(|| i.to_string())
}

/// Levenshtein distance, for "did you mean".
pub fn edit_distance(a: &str, b: &str) -> usize {
    let a: Vec<char> = a.chars().collect();
    let b: Vec<char> = b.chars().collect();
    let mut prev: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.iter().enumerate() {
        let mut cur = vec![i + 1];
        for (j, cb) in b.iter().enumerate() {
            let sub = prev[j] + usize::from(ca != cb);
            cur.push(sub.min(prev[j + 1] + 1).min(cur[j] + 1));
        }
        prev = cur;
    }
    prev[b.len()]
}

/// The closest candidate within distance 2, if any.
pub fn closest<'a>(word: &str, candidates: impl IntoIterator<Item = &'a str>) -> Option<String> {
    let w = word.to_ascii_lowercase();
    candidates
        .into_iter()
        .map(|c| (edit_distance(&w, &c.to_ascii_lowercase()), c))
        .filter(|(d, _)| *d <= 2)
        .min_by_key(|(d, _)| *d)
        .map(|(_, c)| c.to_string())
}

fn find_by_name(stages: &[StageInfo], name: &str) -> Option<usize> {
    stages.iter().position(|s| {
        s.name
            .as_deref()
            .is_some_and(|n| n.eq_ignore_ascii_case(name))
    })
}

/// The target stage: `--target` (case-insensitive), else the last stage (52).
pub fn target_index(stages: &[StageInfo], target: Option<&str>) -> Result<usize, StageError> {
    if stages.is_empty() {
        return Err(StageError::NoStages);
    }
    match target {
        None => Ok(stages.len() - 1),
        Some(t) => find_by_name(stages, t).ok_or_else(|| StageError::UnknownTarget {
            target: t.to_string(),
            hint: closest(t, stages.iter().filter_map(|s| s.name.as_deref())),
        }),
    }
}

/// What stage `i`'s FROM means: a stage defined before it (by name), scratch or an image.
pub fn resolve_base(stages: &[StageInfo], i: usize) -> Result<Source, StageError> {
    let s = &stages[i];
    if s.base.is_empty() {
        return Err(StageError::EmptyBase { line: s.line });
    }
    if s.base.eq_ignore_ascii_case("scratch") {
        return Ok(Source::Scratch);
    }
    match find_by_name(&stages[..i], &s.base) {
        Some(j) => Ok(Source::Stage(j)),
        None => Ok(Source::Image(s.base.clone())),
    }
}

/// What `--from=X` in stage `current` means (48–51).
pub fn resolve_from(
    stages: &[StageInfo],
    current: usize,
    from: &str,
    line: u32,
) -> Result<Source, StageError> {
    if let Some(j) = find_by_name(stages, from) {
        return check_order(stages, current, j, line);
    }
    if let Ok(j) = from.parse::<usize>() {
        if j < stages.len() {
            return check_order(stages, current, j, line);
        }
    }
    if from.eq_ignore_ascii_case("scratch") {
        return Ok(Source::Scratch);
    }
    Ok(Source::Image(from.to_string()))
}

fn check_order(
    stages: &[StageInfo],
    current: usize,
    j: usize,
    line: u32,
) -> Result<Source, StageError> {
    if j == current {
        return Err(StageError::Cycle {
            stage: stage_label(stages, j),
            line,
        });
    }
    if j > current {
        return Err(StageError::Later {
            from: stage_label(stages, j),
            current: stage_label(stages, current),
            line,
        });
    }
    Ok(Source::Stage(j))
}

/// The stages the target needs (itself included), in build order (ascending index).
pub fn needed(stages: &[StageInfo], target: usize) -> Result<Vec<usize>, StageError> {
    let mut need = vec![false; stages.len()];
    let mut todo = vec![target];
    while let Some(i) = todo.pop() {
        if need[i] {
            continue;
        }
        need[i] = true;
        if let Source::Stage(j) = resolve_base(stages, i)? {
            todo.push(j);
        }
        for (f, line) in &stages[i].from_refs {
            if let Source::Stage(j) = resolve_from(stages, i, f, *line)? {
                todo.push(j);
            }
        }
    }
    Ok((0..stages.len()).filter(|i| need[*i]).collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn st(name: Option<&str>, base: &str, froms: &[&str]) -> StageInfo {
        StageInfo {
            name: name.map(str::to_string),
            base: base.into(),
            from_refs: froms.iter().map(|f| (f.to_string(), 1)).collect(),
            line: 1,
        }
    }

    #[test]
    fn e47_scratch() {
        let s = [st(None, "scratch", &[])];
        assert_eq!(resolve_base(&s, 0).unwrap(), Source::Scratch);
    }

    #[test]
    fn e48_stage_names_case_insensitive() {
        let s = [
            st(Some("STAge0"), "busybox", &[]),
            st(None, "scratch", &["staGE0", "stage0"]),
        ];
        assert_eq!(resolve_from(&s, 1, "staGE0", 1).unwrap(), Source::Stage(0));
        assert_eq!(resolve_from(&s, 1, "stage0", 1).unwrap(), Source::Stage(0));
        assert_eq!(needed(&s, 1).unwrap(), [0, 1]);
    }

    #[test]
    fn e49_from_by_index_or_image() {
        let s = [st(None, "busybox", &[]), st(None, "scratch", &[])];
        assert_eq!(resolve_from(&s, 1, "0", 1).unwrap(), Source::Stage(0));
        assert_eq!(
            resolve_from(&s, 1, "busybox:1", 1).unwrap(),
            Source::Image("busybox:1".into())
        );
    }

    #[test]
    fn e50_from_later_stage_is_an_error() {
        let s = [
            st(None, "busybox", &["later"]),
            st(Some("later"), "busybox", &[]),
        ];
        let e = needed(&s, 0).unwrap_err().to_string();
        assert!(
            e.contains("cannot copy from stage")
                && e.contains("needs to be defined before current stage"),
            "{e}"
        );
    }

    #[test]
    fn e51_self_copy_is_circular() {
        let s = [st(Some("stage0"), "busybox", &["stage0"])];
        let e = needed(&s, 0).unwrap_err().to_string();
        assert!(
            e.contains("circular dependency detected on stage: stage0"),
            "{e}"
        );
    }

    #[test]
    fn e52_target_case_insensitive_with_suggestion() {
        let s = [
            st(Some("build"), "busybox", &[]),
            st(Some("foo"), "busybox", &[]),
        ];
        assert_eq!(target_index(&s, Some("Foo")).unwrap(), 1);
        assert_eq!(target_index(&s, None).unwrap(), 1);
        let e = target_index(&s, Some("bulid")).unwrap_err().to_string();
        assert_eq!(
            e,
            "target stage \"bulid\" could not be found (did you mean build?)"
        );
        assert_eq!(target_index(&[], None).unwrap_err(), StageError::NoStages);
    }

    #[test]
    fn e53_only_needed_stages() {
        let s = [
            st(Some("unused"), "busybox", &[]),
            st(Some("base"), "busybox", &[]),
            st(Some("dep"), "busybox", &[]),
            st(None, "base", &["dep"]),
        ];
        assert_eq!(needed(&s, 3).unwrap(), [1, 2, 3]);
    }

    #[test]
    fn e54_empty_from() {
        let s = [st(None, "", &[])];
        assert!(matches!(needed(&s, 0), Err(StageError::EmptyBase { .. })));
    }

    #[test]
    fn e56_from_stage_by_name_only_earlier() {
        let s = [st(Some("base"), "busybox", &[]), st(Some("x"), "base", &[])];
        assert_eq!(resolve_base(&s, 1).unwrap(), Source::Stage(0));
        // A name defined later is an image reference.
        let s = [
            st(Some("x"), "later", &[]),
            st(Some("later"), "busybox", &[]),
        ];
        assert_eq!(resolve_base(&s, 0).unwrap(), Source::Image("later".into()));
    }
}
