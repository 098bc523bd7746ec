//! A child process whose stdout is read line by line as it arrives, and that is SIGKILLed when the parent says.

use std::io::{self, BufRead, BufReader, Read};
use std::path::Path;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError};
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

/// A running child. Dropping it kills the child.
pub(crate) struct Run {
    child: KillOnDrop,
    lines: Receiver<String>,
    seen: Vec<String>,
    stdout: JoinHandle<()>,
    stderr: JoinHandle<String>,
}

/// Kills and reaps the child if the parent stops early, so that no child goes on writing.
struct KillOnDrop(Child);

/// How a child ended, and everything it printed.
pub(crate) struct Ended {
    pub(crate) status: ExitStatus,
    /// Its stdout, in whole lines: a line cut short by the kill is not there.
    pub(crate) lines: Vec<String>,
    pub(crate) stderr: String,
}

impl Run {
    /// Starts `exe` with `args`.
    pub(crate) fn spawn(exe: &Path, args: &[&std::ffi::OsStr]) -> io::Result<Run> {
        let mut child =
            Command::new(exe).args(args).stdin(Stdio::null()).stdout(Stdio::piped()).stderr(Stdio::piped()).spawn()?;
        let (send, lines) = mpsc::channel();
        let mut out = BufReader::new(child.stdout.take().expect("stdout is piped"));
        let stdout = thread::spawn(move || {
            let mut line = String::new();
            while out.read_line(&mut line).unwrap_or(0) > 0 && line.ends_with('\n') {
                let _ = send.send(line.trim_end().to_string());
                line.clear();
            }
        });
        let mut err = child.stderr.take().expect("stderr is piped");
        let stderr = thread::spawn(move || {
            let mut text = String::new();
            let _ = err.read_to_string(&mut text);
            text
        });
        Ok(Run { child: KillOnDrop(child), lines, seen: Vec::new(), stdout, stderr })
    }

    /// Waits up to `timeout` for the child to print `line`.
    pub(crate) fn wait_for(&mut self, line: &str, timeout: Duration) -> Result<(), RecvTimeoutError> {
        let deadline = Instant::now() + timeout;
        loop {
            let next = self.lines.recv_timeout(deadline.saturating_duration_since(Instant::now()))?;
            let found = next == line;
            self.seen.push(next);
            if found {
                return Ok(());
            }
        }
    }

    /// SIGKILLs the child (if it still runs) and collects what it printed.
    pub(crate) fn kill(self) -> io::Result<Ended> {
        let Run { mut child, lines, mut seen, stdout, stderr } = self;
        child.0.kill()?;
        let status = child.0.wait()?;
        stdout.join().expect("the stdout reader does not panic");
        let stderr = stderr.join().expect("the stderr reader does not panic");
        seen.extend(lines.try_iter());
        Ok(Ended { status, lines: seen, stderr })
    }
}

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Whether the child ended by the parent's kill, not on its own.
#[cfg(unix)]
pub(crate) fn killed(status: &ExitStatus) -> bool {
    use std::os::unix::process::ExitStatusExt;
    const SIGKILL: i32 = 9;
    status.signal() == Some(SIGKILL)
}

/// Whether the child ended by the parent's kill, not on its own: `TerminateProcess` with exit code 1, which the child
/// never uses itself (see `CHILD_FAILED`).
#[cfg(not(unix))]
pub(crate) fn killed(status: &ExitStatus) -> bool {
    status.code() == Some(1)
}
