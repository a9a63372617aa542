//! The `fhir-app-operator` binary as a child process: started with exactly the environment given,
//! stopped gracefully (SIGTERM) or killed (SIGKILL) as a crash would.

use crate::emulator::append;
use anyhow::{Context, Result, bail};
use std::ffi::OsStr;
use std::path::Path;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

/// A running operator; killed when dropped.
pub struct OperatorProcess {
    child: Child,
    name: String,
}

impl OperatorProcess {
    /// Starts `exe` with `env` and nothing inherited, its output appended to `log`. `name` is its
    /// identity: its `POD_NAME`, under which it holds the leader Lease and reports Events.
    pub fn start(
        exe: &Path,
        name: &str,
        env: impl IntoIterator<Item = (impl AsRef<OsStr>, impl AsRef<OsStr>)>,
        log: &Path,
    ) -> Result<OperatorProcess> {
        let out = append(log)?;
        let child = Command::new(exe)
            .env_clear()
            .envs(env)
            .env("POD_NAME", name)
            .stdin(Stdio::null())
            .stdout(out.try_clone()?)
            .stderr(out)
            .spawn()
            .with_context(|| format!("starting {}", exe.display()))?;
        Ok(OperatorProcess {
            child,
            name: name.into(),
        })
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// How it exited, if it has.
    pub fn exited(&mut self) -> Option<ExitStatus> {
        self.child.try_wait().ok().flatten()
    }

    /// SIGKILL (what `Child::kill` sends on Unix): no shutdown code runs, like an OOM kill or node
    /// loss. An error if it had already exited by itself.
    pub fn sigkill(mut self) -> Result<()> {
        if let Some(status) = self.exited() {
            bail!(
                "operator {} exited by itself ({status}) before it was killed",
                self.name
            );
        }
        self.child.kill()?;
        self.child.wait()?;
        Ok(())
    }

    /// SIGTERM, then waits for a graceful exit (in-flight reconciles finish first). An error unless
    /// it exits successfully `within`.
    pub async fn sigterm(mut self, within: Duration) -> Result<()> {
        // SAFETY: kill(2) on the pid of a child this value owns and has not reaped.
        unsafe { libc::kill(self.child.id() as i32, libc::SIGTERM) };
        let deadline = Instant::now() + within;
        let status = loop {
            if let Some(status) = self.exited() {
                break status;
            }
            if Instant::now() > deadline {
                bail!(
                    "operator {} still running {within:?} after SIGTERM",
                    self.name
                );
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        };
        if !status.success() {
            bail!("operator {} exited with {status} after SIGTERM", self.name);
        }
        Ok(())
    }
}

impl Drop for OperatorProcess {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}
