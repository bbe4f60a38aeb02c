//! `agedrop watch`: notifications without content. The server never connects out, so
//! the journalist's online workstation asks it, through Tor, how many items came since
//! the account's last pull, at random intervals, and runs a command of the journalist's
//! choosing with that count as its last argument. The count is all that reaches the
//! command: never text from the server, and never through a shell (SECURITY.md,
//! "Notifications").

use std::ffi::OsString;
use std::fmt;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

use crate::random;

/// How long the command may run before it is killed: a notification that hangs must
/// not stop the watching.
pub const COMMAND_TIMEOUT: Duration = Duration::from_secs(120);

/// The longest interval between polls, in seconds (a day).
pub const MAX_INTERVAL_SECS: u64 = 24 * 60 * 60;

/// Why watching cannot start or go on.
#[derive(Debug)]
pub enum WatchError {
    /// `--exec` is empty.
    NoCommand,
    /// `--exec`'s program is neither a file nor on `PATH`.
    NoProgram(String),
    /// The intervals are out of order or out of range.
    Intervals,
    /// The command could not be started, failed, or ran too long.
    Command {
        /// The program, as given.
        program: String,
        /// What happened.
        why: String,
    },
    /// Polling failed (the message is the caller's, already fit for a terminal).
    Poll(String),
}

impl fmt::Display for WatchError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            WatchError::NoCommand => write!(f, "--exec needs a program to run"),
            WatchError::NoProgram(program) => write!(
                f,
                "--exec: no program {program:?}: give a path to an executable file or the name of one on PATH"
            ),
            WatchError::Intervals => write!(
                f,
                "--interval-min must be at least 1 and at most --interval-max, which must be at most {MAX_INTERVAL_SECS} (seconds)"
            ),
            WatchError::Command { program, why } => write!(f, "{program}: {why}"),
            WatchError::Poll(message) => f.write_str(message),
        }
    }
}

impl std::error::Error for WatchError {}

/// The command `--exec` names: a program (a path, or a name looked up on `PATH`) and
/// fixed arguments, split at whitespace with no quoting and no shell. The count is
/// added as the last argument. Anything more elaborate belongs in a script.
pub struct Notify {
    program: PathBuf,
    shown: String,
    args: Vec<String>,
}

impl Notify {
    /// Parses `--exec` and finds its program now, so a typo is an error at start-up
    /// rather than at the first news.
    pub fn parse(exec: &str) -> Result<Self, WatchError> {
        let mut words = exec.split_whitespace();
        let shown = words.next().ok_or(WatchError::NoCommand)?.to_owned();
        let program = find_program(&shown).ok_or_else(|| WatchError::NoProgram(shown.clone()))?;
        Ok(Notify {
            program,
            shown,
            args: words.map(str::to_owned).collect(),
        })
    }

    /// Runs the command with `count` as its last argument and waits for it (at most
    /// [`COMMAND_TIMEOUT`]). Its standard input is empty; its output goes where
    /// `watch`'s goes.
    pub fn run(&self, count: u64) -> Result<(), WatchError> {
        let failed = |why: String| WatchError::Command {
            program: self.shown.clone(),
            why,
        };
        let mut child = Command::new(&self.program)
            .args(&self.args)
            .arg(count.to_string())
            .stdin(Stdio::null())
            .spawn()
            .map_err(|e| failed(format!("cannot start it: {e}")))?;
        let deadline = Instant::now() + COMMAND_TIMEOUT;
        let status: ExitStatus = loop {
            match child.try_wait() {
                Ok(Some(status)) => break status,
                Ok(None) if Instant::now() < deadline => {
                    std::thread::sleep(Duration::from_millis(50));
                }
                Ok(None) => {
                    let _ = child.kill();
                    let _ = child.wait();
                    return Err(failed(format!(
                        "still running after {} s; stopped it",
                        COMMAND_TIMEOUT.as_secs()
                    )));
                }
                Err(e) => return Err(failed(format!("cannot wait for it: {e}"))),
            }
        };
        if status.success() {
            Ok(())
        } else {
            Err(failed(format!("failed ({status})")))
        }
    }
}

/// `name` itself when it holds a `/`, else the first file of that name in a `PATH`
/// directory.
fn find_program(name: &str) -> Option<PathBuf> {
    if name.contains('/') {
        let path = PathBuf::from(name);
        return path.is_file().then_some(path);
    }
    let paths: OsString = std::env::var_os("PATH")?;
    std::env::split_paths(&paths)
        .map(|dir| dir.join(name))
        .find(|candidate| Path::new(candidate).is_file())
}

/// Seconds between polls: uniform in `min..=max`, so the polls of a workstation form
/// no fixed rhythm an observer of its Tor traffic (or of the server) could match.
#[derive(Clone, Copy, Debug)]
pub struct Intervals {
    min: u64,
    max: u64,
}

impl Intervals {
    /// Checks `1 ≤ min ≤ max ≤` [`MAX_INTERVAL_SECS`].
    pub fn new(min: u64, max: u64) -> Result<Self, WatchError> {
        if min == 0 || min > max || max > MAX_INTERVAL_SECS {
            return Err(WatchError::Intervals);
        }
        Ok(Intervals { min, max })
    }

    /// The wait before the next poll.
    fn next(&self) -> Duration {
        Duration::from_secs(random::between(self.min, self.max))
    }
}

/// What one poll found out.
pub enum Poll {
    /// The server answered with this many new items.
    NewItems(u64),
    /// It failed in a way that may pass (no connection, Tor not running, a server
    /// error): reported, and tried again at the next poll.
    Failed(String),
    /// It failed in a way that will not pass by waiting (the token was refused).
    Fatal(String),
}

/// Polls with `poll` and runs `notify` when there are new items and their count
/// differs from the last one polled, so one batch is announced once, and again only
/// when it grows or after a pull. A failing command is reported through `report` and
/// tried again at the next poll. With `once`: one poll, and an error if it or the
/// command fails. Otherwise it runs until killed or a [`Poll::Fatal`].
pub fn watch(
    mut poll: impl FnMut() -> Poll,
    notify: &Notify,
    intervals: Intervals,
    once: bool,
    mut report: impl FnMut(&str),
) -> Result<(), WatchError> {
    if once {
        return match poll() {
            Poll::NewItems(0) => {
                report("no new items since the last pull");
                Ok(())
            }
            Poll::NewItems(count) => {
                notify.run(count)?;
                report(&format!(
                    "{count} new item(s) since the last pull; ran {}",
                    notify.shown
                ));
                Ok(())
            }
            Poll::Failed(message) | Poll::Fatal(message) => Err(WatchError::Poll(message)),
        };
    }
    let mut last: Option<u64> = None;
    loop {
        match poll() {
            Poll::NewItems(count) if count == 0 || last == Some(count) => last = Some(count),
            Poll::NewItems(count) => match notify.run(count) {
                Ok(()) => last = Some(count),
                Err(err) => report(&format!("{err}; trying again at the next poll")),
            },
            Poll::Failed(message) => report(&format!("{message}; trying again at the next poll")),
            Poll::Fatal(message) => return Err(WatchError::Poll(message)),
        }
        std::thread::sleep(intervals.next());
    }
}
