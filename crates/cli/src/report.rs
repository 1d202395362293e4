//! Report an error once, in the bin: `error:` / `caused by:` / `hint:` on stderr,
//! then the exit code. Libraries return errors; only this prints them. The hints come
//! from the whole `source()` chain: every link whose type is known here (the library
//! errors, through [`Hint`]) adds its hint, each hint once ([`hints`]). A program calls
//! [`fail`] (exit 125) or, for another exit code or hints of its own, [`report`].

use std::error::Error;
use std::io::Write;
use std::process::ExitCode;

use crate::exit::ExitCodes;

/// An error that knows how the user can fix it. Implemented here for the library
/// errors (which keep the hint text in their own `hint()` methods: libraries never
/// depend on this crate) and found in an error chain by downcasting.
pub trait Hint {
    /// One line telling the user what to do, when there is something to do.
    fn hint(&self) -> Option<String>;

    /// True when this error's hint rewords what its causes' hints would say: the
    /// reporter then takes no hint from the links below it.
    fn hint_covers_causes(&self) -> bool {
        false
    }
}

/// Implement [`Hint`] for library errors by their inherent `hint()`.
macro_rules! inherent_hint {
    ($($t:ty),* $(,)?) => {$(
        impl Hint for $t {
            fn hint(&self) -> Option<String> {
                <$t>::hint(self)
            }
        }
    )*};
}

inherent_hint!(
    imago_registry::RegistryError,
    imago_builder::engine::StepError,
    imago_runtime::RunError,
    imago_sandbox::ContainerError,
    imago_sandbox::IdMapError,
    imago_sandbox::ChildError,
);

impl Hint for imago_store::StoreError {
    fn hint(&self) -> Option<String> {
        imago_store::StoreError::hint(self)
    }

    /// A damaged image's hint (remove it, then pull or load it again) already says what
    /// its cause's, a missing or damaged blob, would.
    fn hint_covers_causes(&self) -> bool {
        matches!(self, Self::ImageDamaged { .. })
    }
}

impl Hint for imago_builder::engine::BuildError {
    fn hint(&self) -> Option<String> {
        imago_builder::engine::BuildError::hint(self)
    }

    /// An unreadable index.json gets the build's own wording of the store's hint.
    fn hint_covers_causes(&self) -> bool {
        matches!(self, Self::StoreIndex { .. })
    }
}

impl Hint for crate::remote::RemoteError {
    fn hint(&self) -> Option<String> {
        match self {
            Self::Registry(e) => Hint::hint(e),
            Self::Store(e) => Hint::hint(e),
            _ => None,
        }
    }

    /// Both wrap transparently: the chain goes on with the wrapped error's causes, so
    /// whether its hint covers them is the wrapped error's to say.
    fn hint_covers_causes(&self) -> bool {
        match self {
            Self::Registry(e) => Hint::hint_covers_causes(e),
            Self::Store(e) => Hint::hint_covers_causes(e),
            _ => false,
        }
    }
}

impl Hint for CarriedError {
    fn hint(&self) -> Option<String> {
        self.hint.clone()
    }
}

/// The [`Hint`] of one link of a chain, when its type is known, and whether it covers
/// its causes. A boxed source (`#[source] Box<T>`) is a link of type `Box<T>`.
fn hint_of(e: &(dyn Error + 'static)) -> Option<(Option<String>, bool)> {
    fn known<'e, T: Error + Hint + 'static>(e: &'e (dyn Error + 'static)) -> Option<&'e dyn Hint> {
        e.downcast_ref::<T>()
            .map(|t| t as &dyn Hint)
            .or_else(|| e.downcast_ref::<Box<T>>().map(|t| &**t as &dyn Hint))
    }
    let h = known::<imago_store::StoreError>(e)
        .or_else(|| known::<imago_registry::RegistryError>(e))
        .or_else(|| known::<imago_builder::engine::BuildError>(e))
        .or_else(|| known::<imago_builder::engine::StepError>(e))
        .or_else(|| known::<imago_runtime::RunError>(e))
        .or_else(|| known::<imago_sandbox::ContainerError>(e))
        .or_else(|| known::<imago_sandbox::IdMapError>(e))
        .or_else(|| known::<imago_sandbox::ChildError>(e))
        .or_else(|| known::<crate::remote::RemoteError>(e))
        .or_else(|| known::<CarriedError>(e))?;
    Some((h.hint(), h.hint_covers_causes()))
}

/// Each link of `err`'s chain, outermost first, with the hint it contributes.
fn chain_hints<'e>(
    err: &'e (dyn Error + 'static),
) -> Vec<(&'e (dyn Error + 'static), Option<String>)> {
    let mut out = vec![];
    let mut covered = false;
    let mut cur: Option<&(dyn Error + 'static)> = Some(err);
    while let Some(e) = cur {
        let mut hint = None;
        if !covered {
            if let Some((h, covers)) = hint_of(e) {
                hint = h;
                covered = covers;
            }
        }
        out.push((e, hint));
        cur = e.source();
    }
    out
}

/// Every hint of `err`'s chain, outermost first, each once.
pub fn hints(err: &(dyn Error + 'static)) -> Vec<String> {
    let mut out: Vec<String> = vec![];
    for h in chain_hints(err).into_iter().filter_map(|(_, h)| h) {
        if !out.contains(&h) {
            out.push(h);
        }
    }
    out
}

/// Print `err` with its whole source chain, the program's own hints `extra`, then every
/// hint of the chain (each once); return `code`.
/// A broken pipe on stdout (e.g. `iimage ls | head -1`) is not an error: exit 0.
pub fn report(err: &(dyn Error + 'static), extra: &[String], code: u8) -> ExitCode {
    if is_broken_pipe(err) {
        return ExitCode::SUCCESS;
    }
    let mut all = extra.to_vec();
    for h in hints(err) {
        if !all.contains(&h) {
            all.push(h);
        }
    }
    // Ignoring a write error: stderr is the last channel we have.
    let _ = std::io::stderr()
        .lock()
        .write_all(render(err, &all).as_bytes());
    ExitCode::from(code)
}

/// An imago failure (exit 125): the error, its chain and every hint of the chain.
pub fn fail(err: &(dyn Error + 'static)) -> ExitCode {
    report(err, &[], ExitCodes::IMAGO_FAILED)
}

/// An error chain as plain data, each link with the hint it had: for errors that cross
/// a process boundary (the result of a mapping child), where the typed errors, and so
/// their hints, would otherwise be lost. The reporter shows the carried hints.
#[derive(Debug, serde::Serialize, serde::Deserialize)]
pub struct CarriedError {
    msg: String,
    hint: Option<String>,
    cause: Option<Box<CarriedError>>,
}

impl CarriedError {
    /// `err`'s chain with the hint of each link.
    pub fn from_chain(err: &(dyn Error + 'static)) -> Self {
        let mut out: Option<CarriedError> = None;
        for (e, hint) in chain_hints(err).into_iter().rev() {
            out = Some(CarriedError {
                msg: e.to_string(),
                hint,
                cause: out.map(Box::new),
            });
        }
        // The chain has at least `err` itself, so `out` is Some.
        out.unwrap_or(CarriedError {
            msg: err.to_string(),
            hint: None,
            cause: None,
        })
    }
}

impl std::fmt::Display for CarriedError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.msg)
    }
}

impl Error for CarriedError {
    fn source(&self) -> Option<&(dyn Error + 'static)> {
        self.cause.as_deref().map(|c| c as &(dyn Error + 'static))
    }
}

/// The lines `report` prints. A cause whose text ends the line before it (an error
/// that shows its source in its own message, as some libraries' errors do) is skipped:
/// it would say the same thing twice.
fn render(err: &(dyn Error + 'static), hints: &[String]) -> String {
    let mut out = format!("error: {err}\n");
    let mut last = err.to_string();
    let mut source = err.source();
    while let Some(cause) = source {
        let text = cause.to_string();
        if !last.ends_with(&text) {
            out.push_str(&format!("caused by: {text}\n"));
            last = text;
        }
        source = cause.source();
    }
    for h in hints {
        out.push_str(&format!("hint: {h}\n"));
    }
    out
}

fn is_broken_pipe(err: &(dyn Error + 'static)) -> bool {
    let mut cur: Option<&(dyn Error + 'static)> = Some(err);
    while let Some(e) = cur {
        if let Some(io) = e.downcast_ref::<std::io::Error>() {
            if io.kind() == std::io::ErrorKind::BrokenPipe {
                return true;
            }
        }
        cur = e.source();
    }
    false
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, thiserror::Error)]
    #[error("connect: {0}")]
    struct Repeats(#[source] std::io::Error);

    #[derive(Debug, thiserror::Error)]
    #[error("connect")]
    struct Chained(#[source] std::io::Error);

    /// A program's own error around a library's.
    #[derive(Debug, thiserror::Error)]
    #[error("build")]
    struct Outer(#[source] imago_builder::engine::BuildError);

    fn refused() -> std::io::Error {
        std::io::Error::new(std::io::ErrorKind::ConnectionRefused, "Connection refused")
    }

    #[test]
    fn each_cause_is_printed_once() {
        let text = render(&Repeats(refused()), &["is it up?".into()]);
        assert_eq!(
            text,
            "error: connect: Connection refused\nhint: is it up?\n"
        );
        let text = render(&Chained(refused()), &[]);
        assert_eq!(text, "error: connect\ncaused by: Connection refused\n");
    }

    fn lock_error() -> imago_store::StoreError {
        imago_store::StoreError::Lock {
            path: "/nfs/imago/lock".into(),
            source: std::io::Error::from(std::io::ErrorKind::Unsupported),
        }
    }

    fn lock_hint() -> String {
        lock_error().hint().unwrap()
    }

    #[test]
    fn a_store_error_in_a_build_error_gives_the_stores_hint() {
        use imago_builder::engine::BuildError;
        // The build has no hint of its own for a failed tag: the store's comes through.
        let e = BuildError::Tag {
            name: "x".into(),
            source: lock_error(),
        };
        assert_eq!(BuildError::hint(&e), None);
        assert_eq!(hints(&e), [lock_hint()]);
        // The build passes the store's hint on itself: still shown once.
        let e = BuildError::Store(lock_error());
        assert_eq!(hints(&e), [lock_hint()]);
        // Under a type the reporter does not know.
        let e = Outer(BuildError::Store(lock_error()));
        assert_eq!(hints(&e), [lock_hint()]);
    }

    #[test]
    fn boxed_sources_and_deep_links_are_found() {
        use imago_builder::engine::{BuildError, StepError};
        let pull = BuildError::Pull {
            reference: "busybox".into(),
            line: 1,
            source: Box::new(imago_registry::RegistryError::NotInStore("x".into())),
        };
        assert!(hints(&pull)[0].contains("iimage ls"), "{:?}", hints(&pull));
        let idmap = imago_sandbox::IdMapError::Write {
            path: "/proc/1/uid_map".into(),
            what: "0 1000 1".into(),
            source: std::io::Error::from(std::io::ErrorKind::PermissionDenied),
        };
        let want = idmap.hint().unwrap();
        let step = BuildError::Step {
            n: 2,
            line: 3,
            text: "RUN true".into(),
            source: Box::new(StepError::Child(imago_sandbox::ChildError::IdMap {
                pid: 1,
                source: idmap,
            })),
        };
        assert_eq!(hints(&step), [want]);
    }

    #[test]
    fn a_hint_that_covers_its_causes_stands_alone() {
        let e = imago_builder::engine::BuildError::StoreIndex {
            path: "/s/index.json".into(),
            source: imago_store::StoreError::IndexDamaged {
                path: "/s/index.json".into(),
                why: "not JSON".into(),
            },
        };
        let h = hints(&e);
        assert_eq!(h.len(), 1, "{h:?}");
        assert!(h[0].contains("build into another store"), "{h:?}");
    }

    #[test]
    fn carried_errors_keep_their_hints() {
        let e = Outer(imago_builder::engine::BuildError::Tag {
            name: "x".into(),
            source: lock_error(),
        });
        let json = serde_json::to_string(&CarriedError::from_chain(&e)).unwrap();
        let back: CarriedError = serde_json::from_str(&json).unwrap();
        assert_eq!(hints(&back), [lock_hint()]);
        assert_eq!(render(&back, &[]), render(&e, &[]));
    }

    #[test]
    fn registry_errors_hint_through_the_trait() {
        let e = imago_registry::RegistryError::NotInStore("x".into());
        assert!(Hint::hint(&e).is_some_and(|h| h.contains("iimage ls")));
    }
}
