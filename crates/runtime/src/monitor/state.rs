//! What the monitor's two threads share: the reply pipe until the starter has its one
//! answer, and the container's record, written `running` once (by whichever thread sees
//! the start first) and `exited` at the end.
//! Never: starts or waits for the container.

use std::fs::File;
use std::io::Write;
use std::path::PathBuf;
use std::sync::Mutex;

use imago_sandbox::RemoteError;

use super::{MonitorError, Reply};
use crate::create::now_rfc3339;
use crate::live::ProcRef;
use crate::record::{ContainerRecord, Containers, State};

/// What both threads touch: the reply pipe until answered, and the record.
pub(super) struct Shared {
    pub(super) reply: Mutex<Option<File>>,
    pub(super) running: Mutex<Option<Running>>,
}

pub(super) struct Running {
    pub(super) containers: Containers,
    pub(super) rec: ContainerRecord,
    pub(super) container_pid: i32,
    pub(super) socket: Option<PathBuf>,
    /// The published ports, docker's form.
    pub(super) ports: Vec<String>,
}

impl Shared {
    /// Record `running` and reply `Started`, once (later calls do nothing).
    pub(super) fn started(&self) {
        let mut reply = self.reply.lock().unwrap_or_else(|p| p.into_inner());
        let Some(mut pipe) = reply.take() else { return };
        if let Some(r) = self
            .running
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .as_mut()
        {
            r.rec.state = State::Running;
            r.rec.started = Some(now_rfc3339());
            r.rec.finished = None;
            r.rec.exit_code = None;
            r.rec.monitor = ProcRef::current();
            r.rec.pid = ProcRef::of(r.container_pid);
            r.rec.attach_socket = r.socket.clone();
            r.rec.ports = r.ports.clone();
            if let Err(e) = r.containers.write_record(&r.rec) {
                tracing::warn!("record the running container: {e}");
            }
        }
        send(&mut pipe, &Reply::Started);
    }

    /// Record `exited` with `code`.
    pub(super) fn exited(&self, code: i32) {
        if let Some(r) = self
            .running
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .as_mut()
        {
            r.rec.state = State::Exited;
            r.rec.exit_code = Some(code);
            r.rec.finished = Some(now_rfc3339());
            r.rec.pid = None;
            r.rec.attach_socket = None;
            r.rec.ports.clear();
            if let Err(e) = r.containers.write_record(&r.rec) {
                tracing::warn!("record the container's exit: {e}");
            }
        }
    }

    /// Reply `Failed` with `err`, if nothing was replied yet; false otherwise.
    pub(super) fn fail(&self, err: &MonitorError) -> bool {
        let mut reply = self.reply.lock().unwrap_or_else(|p| p.into_inner());
        let Some(mut pipe) = reply.take() else {
            return false;
        };
        send(
            &mut pipe,
            &Reply::Failed {
                error: RemoteError::from_chain(err),
                hint: err.hint(),
            },
        );
        true
    }
}

fn send(pipe: &mut File, reply: &Reply) {
    let mut line = serde_json::to_vec(reply).unwrap_or_default();
    line.push(b'\n');
    // Ignoring a failed write: the starter is gone, and it reports that itself.
    let _ = pipe.write_all(&line);
}

impl Shared {
    /// The container's name.
    pub(super) fn name(&self) -> Option<String> {
        self.running
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .as_ref()
            .and_then(|r| r.rec.name.clone())
    }
}
