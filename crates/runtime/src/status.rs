//! A container's state as it is now, from its record and the processes it names: a
//! record that says `running` while its monitor is gone (killed, or the machine
//! rebooted) is exited, exit code unknown ([`LOST_EXIT_CODE`], as docker reports a
//! container whose shim died).
//! Never: writes records (the monitor and the creator do), signals processes.

use crate::record::{ContainerRecord, State};

/// The exit code shown for a container whose monitor ended without recording one.
pub const LOST_EXIT_CODE: i32 = 255;

/// The state of a container now.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Status {
    /// created, running or exited.
    pub state: State,
    /// Exit code once exited ([`LOST_EXIT_CODE`] when its monitor died).
    pub exit_code: Option<i32>,
    /// The monitor ended without recording the exit.
    pub lost: bool,
}

impl Status {
    /// Is it running?
    pub fn running(&self) -> bool {
        self.state == State::Running
    }
}

/// The state of the container of `rec` now.
pub fn of(rec: &ContainerRecord) -> Status {
    let monitor_alive = rec.monitor.is_some_and(|m| m.alive());
    match rec.state {
        State::Running if monitor_alive => Status {
            state: State::Running,
            exit_code: None,
            lost: false,
        },
        State::Running => Status {
            state: State::Exited,
            exit_code: Some(LOST_EXIT_CODE),
            lost: true,
        },
        State::Exited => Status {
            state: State::Exited,
            exit_code: rec.exit_code,
            lost: false,
        },
        State::Created => Status {
            state: State::Created,
            exit_code: None,
            lost: false,
        },
    }
}

/// The state of a container from its record as `read` gives it (`None`: removed), read
/// once more when it says `running` and its monitor is gone: the monitor records the exit
/// and then ends, so between the first read and the liveness check it may have done
/// both, and only a record read after its death is final.
pub fn settled(mut read: impl FnMut() -> Option<ContainerRecord>) -> Option<Status> {
    let st = of(&read()?);
    match st.lost {
        true => read().map(|rec| of(&rec)),
        false => Some(st),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::live::ProcRef;

    fn rec(state: State, monitor: Option<ProcRef>) -> ContainerRecord {
        ContainerRecord {
            id: "0".repeat(64),
            name: None,
            image: "x".into(),
            image_id: None,
            command: vec![],
            created: 0,
            state,
            exit_code: None,
            started: None,
            finished: None,
            monitor,
            pid: None,
            attach_socket: None,
            launch: None,
            ports: vec![],
        }
    }

    #[test]
    fn running_needs_a_live_monitor() {
        let me = ProcRef::current().unwrap();
        assert!(of(&rec(State::Running, Some(me))).running());
        let dead = ProcRef {
            start_time: me.start_time + 1,
            ..me
        };
        let s = of(&rec(State::Running, Some(dead)));
        assert_eq!(s.state, State::Exited);
        assert_eq!(s.exit_code, Some(LOST_EXIT_CODE));
        assert!(s.lost);
        assert_eq!(of(&rec(State::Running, None)).state, State::Exited);
        assert_eq!(of(&rec(State::Created, None)).state, State::Created);
    }

    /// The race `ictr wait` lost once in CI: read `running`, then the monitor records
    /// exit 0 and ends before its liveness is checked.
    #[test]
    fn an_exit_recorded_as_the_monitor_ends_is_not_lost() {
        let me = ProcRef::current().unwrap();
        let dead = ProcRef {
            start_time: me.start_time + 1,
            ..me
        };
        let mut exited = rec(State::Exited, Some(dead));
        exited.exit_code = Some(0);
        let mut reads = vec![exited, rec(State::Running, Some(dead))];
        let s = settled(|| reads.pop()).unwrap();
        assert_eq!(
            (s.state, s.exit_code, s.lost),
            (State::Exited, Some(0), false)
        );
        // Still `running` after its monitor's death: lost.
        let mut reads = vec![
            rec(State::Running, Some(dead)),
            rec(State::Running, Some(dead)),
        ];
        let s = settled(|| reads.pop()).unwrap();
        assert_eq!((s.exit_code, s.lost), (Some(LOST_EXIT_CODE), true));
    }
}
