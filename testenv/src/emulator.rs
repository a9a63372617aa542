//! The `entra-emulator` binary as a child process, and the settings it prints once it serves.

use anyhow::{Context, Result, bail};
use std::ffi::OsStr;
use std::path::Path;
use std::process::Stdio;
use std::time::Duration;
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command};

/// A running `entra-emulator`; killed when dropped.
pub struct EmulatorProcess {
    child: Child,
    settings: Vec<(String, String)>,
}

impl EmulatorProcess {
    /// Starts `exe` with `args` (its stderr appended to `log`) and reads the `NAME=value` lines it
    /// prints once it serves, up to `CA_FILE`, which it prints last.
    pub async fn start(
        exe: &Path,
        args: impl IntoIterator<Item = impl AsRef<OsStr>>,
        log: &Path,
    ) -> Result<EmulatorProcess> {
        let mut child = Command::new(exe)
            .args(args)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(append(log)?)
            .kill_on_drop(true)
            .spawn()
            .with_context(|| format!("starting {}", exe.display()))?;
        let mut lines = BufReader::new(child.stdout.take().context("stdout")?).lines();
        let mut settings = vec![];
        while let Some(line) =
            tokio::time::timeout(Duration::from_secs(60), lines.next_line()).await??
        {
            let Some((name, value)) = line.split_once('=') else {
                continue;
            };
            settings.push((name.to_string(), shell_unquote(value)));
            if name == "CA_FILE" {
                return Ok(EmulatorProcess { child, settings });
            }
        }
        bail!("{} exited; see {}", exe.display(), log.display())
    }

    /// Every setting it printed, in order.
    pub fn settings(&self) -> &[(String, String)] {
        &self.settings
    }

    /// The setting `name` it printed.
    pub fn setting(&self, name: &str) -> Result<&str> {
        self.settings
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
            .with_context(|| format!("the emulator printed no {name}"))
    }

    /// The settings under the names fhir-app-operator reads (`AZURE_*`, `FHIR_OP_*`).
    pub fn operator_env(&self) -> impl Iterator<Item = (&str, &str)> {
        self.settings
            .iter()
            .filter(|(k, _)| k.starts_with("AZURE_") || k.starts_with("FHIR_OP_"))
            .map(|(k, v)| (k.as_str(), v.as_str()))
    }

    /// Kills it and waits until it has exited.
    pub async fn stop(mut self) {
        let _ = self.child.kill().await;
    }
}

/// A value as the emulator prints it: shell-quoted only when it needs to be (secrets, odd paths).
fn shell_unquote(v: &str) -> String {
    v.strip_prefix('\'')
        .and_then(|v| v.strip_suffix('\''))
        .unwrap_or(v)
        .replace("'\\''", "'")
}

/// `path` opened for appending (created if missing): a process's log.
pub(crate) fn append(path: &Path) -> Result<std::fs::File> {
    std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
        .with_context(|| format!("opening {}", path.display()))
}

#[cfg(test)]
mod tests {
    use super::shell_unquote;

    #[test]
    fn unquotes_what_the_emulator_quotes() {
        assert_eq!(
            shell_unquote("https://127.0.0.1:1/"),
            "https://127.0.0.1:1/"
        );
        assert_eq!(shell_unquote("'a b'"), "a b");
        assert_eq!(shell_unquote("'it'\\''s'"), "it's");
    }
}
