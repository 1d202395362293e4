//! Questions on the terminal (`ilogin`'s user name and password): the prompt on stderr,
//! one line read from stdin; a secret is read with the terminal's echo off, and the echo
//! comes back however the read ends.
//!
//! Never: reads more than one line, or checks that stdin is a terminal (callers do).

use std::io::{BufRead, Read, Write};

use rustix::termios::{tcgetattr, tcsetattr, LocalModes, OptionalActions, Termios};

/// The longest answer read: a password or token, not a file.
const MAX_LINE: u64 = 64 * 1024;

/// `prompt` on stderr, then one line of stdin without its line ending.
pub fn ask(prompt: &str) -> std::io::Result<String> {
    say(prompt)?;
    read_line()
}

/// As [`ask`], with the terminal on stdin not echoing what is typed.
pub fn ask_secret(prompt: &str) -> std::io::Result<String> {
    say(prompt)?;
    let answer = {
        let _quiet = EchoOff::new()?;
        read_line()
    };
    // The Enter that ended the line was not echoed either.
    say("\n")?;
    answer
}

fn say(text: &str) -> std::io::Result<()> {
    let mut err = std::io::stderr().lock();
    err.write_all(text.as_bytes())?;
    err.flush()
}

/// One line of stdin (at most 64 KiB) without its line ending.
pub fn read_line() -> std::io::Result<String> {
    let mut s = String::new();
    std::io::stdin().lock().take(MAX_LINE).read_line(&mut s)?;
    Ok(s.trim_end_matches(['\n', '\r']).to_owned())
}

/// The terminal of stdin without echo while this lives.
struct EchoOff {
    saved: Termios,
}

impl EchoOff {
    fn new() -> std::io::Result<EchoOff> {
        let stdin = std::io::stdin();
        let saved = tcgetattr(&stdin)?;
        let mut quiet = saved.clone();
        quiet.local_modes.remove(LocalModes::ECHO);
        tcsetattr(&stdin, OptionalActions::Now, &quiet)?;
        Ok(EchoOff { saved })
    }
}

impl Drop for EchoOff {
    fn drop(&mut self) {
        // Nothing more can be done if the terminal went away meanwhile.
        let _ = tcsetattr(std::io::stdin(), OptionalActions::Now, &self.saved);
    }
}
