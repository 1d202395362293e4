//! imago's bounds on one expansion, which BuildKit does not have: how deep `${...}` may
//! nest, how long any string it builds may grow, and how much pattern-matching work it
//! may do; plus the one `TooLong` error every part reports.
//! Never: enforces them itself (the scanner in `word`/`param` and the matcher in
//! `pattern` check them where they build or match) or bounds an instruction as a whole
//! (`model::expansion` gives each word what is left of the instruction's budget).

use super::ExpandErrorKind;

/// How deeply `${...}` may nest (`${a:-${b:-...}}`); real Dockerfiles use two or three.
pub const MAX_NESTING: usize = 128;

/// The longest result of one expansion, in bytes (1 MiB). Also the bound of every
/// intermediate string (a default word, a replacement), so memory stays within a few
/// times this whatever the input.
pub const MAX_EXPANDED_LEN: usize = 1 << 20;

/// The pattern-matching work one expansion may do (`${v#p}`, `${v/p/r}`), in
/// character × pattern-token steps: ample for real patterns, well under a second.
pub const MAX_MATCH_STEPS: u64 = 1 << 26;

/// The error for any string past its limit. It names the fixed [`MAX_EXPANDED_LEN`], not
/// what was left of an instruction's budget: that is what a user can look up.
pub(super) fn too_long() -> ExpandErrorKind {
    ExpandErrorKind::TooLong {
        limit: MAX_EXPANDED_LEN,
    }
}

#[cfg(test)]
mod tests {
    use super::super::{expand_word, test_env as env, NoVars};
    use super::*;

    #[test]
    fn deep_nesting_is_an_error_not_a_crash() {
        let deep = format!("{}x{}", "${a:-".repeat(20_000), "}".repeat(20_000));
        let e = expand_word(&deep, &NoVars).unwrap_err();
        assert_eq!(e.kind, ExpandErrorKind::TooDeep);
        let ok = format!("{}x{}", "${a:-".repeat(50), "}".repeat(50));
        assert_eq!(expand_word(&ok, &NoVars).unwrap(), "x");
    }

    #[test]
    fn doubling_bomb_stops_at_the_limit() {
        // `ENV A=<1000 chars>` then `ENV A=$A$A` again and again: 1000 · 2ⁿ bytes.
        let mut a = "x".repeat(1000);
        let t0 = std::time::Instant::now();
        let mut doublings = 0;
        let err = loop {
            match expand_word("$A$A", &env(&[("A", &a)])) {
                Ok(v) => {
                    a = v;
                    doublings += 1;
                }
                Err(e) => break e,
            }
            assert!(a.len() <= 4 << 20, "no limit: {} bytes", a.len());
        };
        assert_eq!(doublings, 10, "1000 · 2^10 fits in 1 MiB, 2^11 does not");
        assert_eq!(
            err.kind,
            ExpandErrorKind::TooLong {
                limit: MAX_EXPANDED_LEN
            }
        );
        assert!(t0.elapsed() < std::time::Duration::from_secs(2));
        // The same inside quotes, defaults and replacements.
        let big = "y".repeat(MAX_EXPANDED_LEN / 2 + 1);
        let e = env(&[("B", big.as_str()), ("S", "ab")]);
        for w in [
            "\"$B$B\"",
            "${U:-$B$B}",
            "${S//?/$B}",
            "${S//?/$0$B}",
            "$B''$B",
        ] {
            let r = expand_word(w, &e).unwrap_err();
            assert!(
                matches!(r.kind, ExpandErrorKind::TooLong { .. }),
                "{w}: {r}"
            );
        }
        // A literal word longer than the limit too.
        let long = "z".repeat(MAX_EXPANDED_LEN + 1);
        assert!(matches!(
            expand_word(&long, &NoVars).unwrap_err().kind,
            ExpandErrorKind::TooLong { .. }
        ));
    }
}
