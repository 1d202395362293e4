//! Host processes as the runtime and `ictr exec` see them: the start time and state the
//! kernel gives a process in `/proc/PID/stat` (a pid alone cannot tell a process from a
//! later one that reuses its pid; the pid with its start time can), and a forked child
//! that closes the fds it inherited.
//! Owns: reading and parsing `/proc/PID/stat`. Never: signals, waits for or reaps a
//! process; the fork itself is the syscall seam's (sys.rs).

pub use crate::sys::fork_child;

/// The start time (field 22 of `/proc/PID/stat`, clock ticks since boot) of the
/// running process `pid`; `None` when there is none, or it has ended and only waits to
/// be reaped.
pub fn start_time(pid: i32) -> Option<u64> {
    if pid <= 0 {
        return None;
    }
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    if has_ended(&stat) {
        return None;
    }
    parse_start_time(&stat)
}

/// Field 22 (starttime) of a `/proc/PID/stat` line. The command name (field 2) is in
/// parentheses and may hold spaces and parentheses itself: fields are counted after its
/// last `)`.
pub fn parse_start_time(stat: &str) -> Option<u64> {
    let (_, rest) = stat.rsplit_once(')')?;
    // After the name come field 3 (state) … field 22 (starttime): index 19.
    rest.split_whitespace().nth(19)?.parse().ok()
}

/// Field 3 of a stat line: the state (`R`, `S`, … `Z` for a zombie).
pub fn parse_state(stat: &str) -> Option<&str> {
    stat.rsplit_once(')')?.1.split_whitespace().next()
}

/// Has the process of this stat line ended (a zombie, or dead)? It only waits to be
/// reaped then: nothing of it runs or can be joined.
pub fn has_ended(stat: &str) -> bool {
    matches!(parse_state(stat), Some("Z" | "X"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn start_time_is_field_22_even_with_odd_names() {
        let line = "42 (a) b (c) S 1 42 42 0 -1 4194560 100 0 0 0 1 2 0 0 20 0 1 0 98765 1000 10";
        assert_eq!(parse_start_time(line), Some(98765));
        assert_eq!(parse_start_time("garbage"), None);
    }

    #[test]
    fn start_time_is_field_22_even_with_parens_in_the_name() {
        let line = "4242 (a) b (c)) S 1 4242 4242 0 -1 4194560 100 0 0 0 1 2 0 0 20 0 1 0 987654 1000 10 18446744073709551615";
        assert_eq!(parse_start_time(line), Some(987654));
        assert_eq!(parse_state(line), Some("S"));
        assert_eq!(parse_start_time("4242 (x) S 1"), None);
        assert_eq!(parse_start_time("no parens at all"), None);
    }

    #[test]
    fn a_zombie_has_ended() {
        assert!(has_ended("7 (x) Z 1 7 7"));
        assert!(!has_ended("7 (x) S 1 7 7"));
        assert!(!has_ended("garbage"));
    }

    #[test]
    fn this_process_has_a_start_time() {
        assert!(start_time(std::process::id() as i32).is_some());
        assert_eq!(start_time(0), None);
        // Above the largest pid_max the kernel allows (2^22).
        assert_eq!(start_time(1 << 23), None);
    }
}
