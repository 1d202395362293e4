//! `ictr inspect`: containers as a JSON array in docker's shape (the fields imago has:
//! Id, Created, Path, Args, State, Image, LogPath, Name, GraphDriver, HostConfig,
//! Config, NetworkSettings.Ports). A container whose node-local dir was wiped is `Dead`,
//! with the reason in `State.Error`. Containers not found are reported; the others still print.
//! `--format TEMPLATE` prints each container through a Go template instead.

use std::process::ExitCode;

use imago_cli::template::Template;
use imago_cli::GlobalOpts;
use imago_runtime::status::{self, LOST_EXIT_CODE};
use imago_runtime::{ContainerRecord, Containers, State};
use serde_json::{json, Value};

use crate::common::{self, CtrError};

pub use crate::args::InspectArgs as Args;

/// docker's zero time, for times that never happened.
const ZERO_TIME: &str = "0001-01-01T00:00:00Z";

fn ports(rec: &ContainerRecord) -> Value {
    let mut m = serde_json::Map::new();
    for p in crate::common::live_ports(rec)
        .iter()
        .filter_map(|p| crate::port::parse(p))
    {
        let key = format!("{}/{}", p.port, p.proto);
        let entry = json!({"HostIp": p.host_ip, "HostPort": p.host_port});
        match m.get_mut(&key).and_then(Value::as_array_mut) {
            Some(a) => a.push(entry),
            None => {
                m.insert(key, json!([entry]));
            }
        }
    }
    Value::Object(m)
}

/// One container in docker's inspect shape.
pub fn inspect(c: &Containers, rec: &ContainerRecord) -> Value {
    let st = status::of(rec);
    let running = st.running();
    let l = rec.launch.as_ref();
    let created = jiff::Timestamp::from_second(rec.created as i64)
        .map(|t| t.to_string())
        .unwrap_or_else(|_| ZERO_TIME.into());
    let id = imago_runtime::ContainerId::parse(&rec.id);
    let place = id.as_ref().map(|i| c.place(i));
    let own = place.as_ref().map(|p| p.path().to_path_buf());
    let at = |sub: &str| {
        own.as_ref()
            .map(|d| d.join(sub).display().to_string())
            .unwrap_or_default()
    };
    let log_path = (own.as_ref())
        .map(|d| {
            imago_runtime::logfile::path(d, &rec.id)
                .display()
                .to_string()
        })
        .unwrap_or_default();
    let dead = matches!(place, Some(imago_runtime::Place::Gone(_)));
    let missing = place.as_ref().and_then(imago_runtime::Place::why_missing);
    let pid = if running {
        rec.pid.map(|p| p.pid).unwrap_or(0)
    } else {
        0
    };
    let network = l
        .and_then(|l| serde_json::to_value(l.network).ok())
        .unwrap_or(Value::Null);
    json!({
        "Id": rec.id,
        "Created": created,
        "Path": rec.command.first().cloned().unwrap_or_default(),
        "Args": rec.command.iter().skip(1).collect::<Vec<_>>(),
        "State": {
            "Status": st.state.as_str(),
            "Running": running,
            "Paused": false,
            "Restarting": false,
            "OOMKilled": false,
            "Dead": dead,
            "Pid": pid,
            "ExitCode": if st.state == State::Exited { st.exit_code.unwrap_or(LOST_EXIT_CODE) } else { 0 },
            "Error": match (missing, st.lost) {
                (Some(why), _) => why,
                (None, true) => "the container's monitor ended without recording the exit".into(),
                (None, false) => String::new(),
            },
            "StartedAt": rec.started.clone().unwrap_or_else(|| ZERO_TIME.into()),
            "FinishedAt": if running { ZERO_TIME.into() } else { rec.finished.clone().unwrap_or_else(|| ZERO_TIME.into()) },
        },
        "Image": rec.image_id.clone().unwrap_or_default(),
        "LogPath": log_path,
        "Name": format!("/{}", rec.name.clone().unwrap_or_default()),
        "RestartCount": 0,
        "Driver": "overlay",
        "GraphDriver": {
            "Name": "overlay",
            "Data": {"UpperDir": at("upper"), "WorkDir": at("work"), "MergedDir": at("rootfs")},
        },
        "Platform": "linux",
        "HostConfig": {
            "AutoRemove": l.is_some_and(|l| l.auto_remove),
            "NetworkMode": network,
            "Privileged": l.is_some_and(|l| l.privileged),
            "ReadonlyRootfs": l.is_some_and(|l| l.read_only),
            "Init": l.is_some_and(|l| l.init),
        },
        "Config": {
            "Hostname": l.map(|l| l.hostname.clone()).unwrap_or_default(),
            "User": l.map(|l| l.user.clone()).unwrap_or_default(),
            "Tty": l.is_some_and(|l| l.tty),
            "OpenStdin": l.is_some_and(|l| l.interactive),
            "Env": l.map(|l| l.env.clone()).unwrap_or_default(),
            "Cmd": rec.command,
            "Image": rec.image,
            "WorkingDir": l.map(|l| l.cwd.clone()).unwrap_or_default(),
            "Entrypoint": Value::Null,
            "StopSignal": l.and_then(|l| l.stop_signal.clone()),
        },
        "NetworkSettings": {
            "Ports": ports(rec),
        },
    })
}

fn run_inspect(global: &GlobalOpts, a: &Args) -> Result<bool, CtrError> {
    // A bad template fails before any container is read.
    let template = match a.format.as_deref() {
        None | Some("json") => None,
        Some(f) => Some(Template::parse(f)?),
    };
    let c = common::containers(global)?;
    let mut out = vec![];
    let mut missing = false;
    for name in &a.containers {
        match common::find(&c, name) {
            Ok((_, rec)) => out.push(inspect(&c, &rec)),
            Err(e) => {
                // The code is decided below, once every container was tried.
                let _ = imago_cli::fail(&e);
                missing = true;
            }
        }
    }
    match template {
        None => imago_cli::output::print_json(&out)?,
        Some(t) => imago_cli::output::print_text(&t.render_each(&out)?)?,
    }
    Ok(missing)
}

/// Run `ictr inspect`.
pub fn run(global: &GlobalOpts, args: &Args) -> ExitCode {
    match run_inspect(global, args) {
        Ok(false) => ExitCode::SUCCESS,
        Ok(true) => ExitCode::from(imago_cli::ExitCodes::IMAGO_FAILED),
        Err(e) => imago_cli::fail(&e),
    }
}
