//! What a recording holds, each file capped (the tail is kept: the end of a log is where a
//! failure shows). Every source is optional: a missing journal (outside systemd), agent log or
//! Docker engine becomes a one-line note in the file, never a failed recording.

use crate::evidence::redact::{self, Redactor};
use crate::util::paths::Paths;
use futures_util::StreamExt;
use std::io::{Read, Seek, SeekFrom};
use std::time::Duration;

pub const STATE_CAP: usize = 256 << 10;
pub const JOURNAL_CAP: usize = 512 << 10;
pub const AGENT_LOG_CAP: usize = 256 << 10;
pub const ECS_CONFIG_CAP: usize = 64 << 10;
/// Per container, and for all of them together.
pub const CONTAINER_LOG_CAP: usize = 32 << 10;
pub const CONTAINERS_CAP: usize = 256 << 10;
const CONTAINER_TAIL_LINES: &str = "200";
const MAX_CONTAINERS: usize = 16;
/// journalctl and the Docker engine each get at most this long: the upload needs the rest.
const SOURCE_WAIT: Duration = Duration::from_secs(2);

/// One file of a recording.
pub struct Artifact {
    pub name: &'static str,
    pub body: String,
}

/// Everything, secrets removed: ecs.config masked, its secrets cut from every other file.
pub async fn collect(
    paths: &Paths,
    containers: &crate::containers::Scope,
    trusted_proxies: &[&str],
) -> Vec<Artifact> {
    let ecs_config = read_tail(&paths.ecs_config(), ECS_CONFIG_CAP)
        .unwrap_or_else(|e| format!("(no ecs.config: {e})\n"));
    let mut redactor = Redactor::from_ecs_config(&ecs_config);
    for url in trusted_proxies {
        redactor.add_proxy_url(url);
    }
    let (journal, containers) = tokio::join!(journal(), container_logs(containers));
    let files = [
        (
            "state.json",
            read_tail(&paths.state_file(), STATE_CAP)
                .unwrap_or_else(|e| format!("(no state file: {e})\n")),
        ),
        ("ecs-boot.journal.txt", journal),
        (
            "ecs-agent.log",
            read_tail(&paths.host("/var/log/ecs/ecs-agent.log"), AGENT_LOG_CAP)
                .unwrap_or_else(|e| format!("(no ECS agent log: {e})\n")),
        ),
        ("ecs.config.masked", redact::mask_ecs_config(&ecs_config)),
        ("containers.log", containers),
    ];
    files
        .into_iter()
        .map(|(name, body)| Artifact {
            name,
            body: redactor.apply(&body),
        })
        .collect()
}

/// The last `cap` bytes of a file (from the first whole line), lossily as UTF-8.
pub fn read_tail(path: &std::path::Path, cap: usize) -> std::io::Result<String> {
    let mut f = std::fs::File::open(path)?;
    let len = f.metadata()?.len();
    let start = len.saturating_sub(cap as u64);
    f.seek(SeekFrom::Start(start))?;
    let mut buf = Vec::with_capacity(cap.min(len as usize));
    f.take(cap as u64).read_to_end(&mut buf)?;
    let mut text = String::from_utf8_lossy(&buf).into_owned();
    if start > 0 {
        let cut = text.find('\n').map_or(0, |i| i + 1);
        text = format!("…[{start} earlier bytes not kept]\n{}", &text[cut..]);
    }
    Ok(text)
}

/// Keeps the last `cap` bytes of `text`, on a character boundary.
fn keep_tail(text: &str, cap: usize) -> String {
    if text.len() <= cap {
        return text.to_string();
    }
    let mut start = text.len() - cap;
    while !text.is_char_boundary(start) {
        start += 1;
    }
    format!("…[{start} earlier bytes not kept]\n{}", &text[start..])
}

/// ecs-boot's journal for this boot; absent outside systemd.
async fn journal() -> String {
    let mut cmd = tokio::process::Command::new("journalctl");
    cmd.args([
        "-u",
        "ecs-boot",
        "-b",
        "-o",
        "cat",
        "--no-pager",
        "-n",
        "20000",
    ])
    .stdin(std::process::Stdio::null())
    .stderr(std::process::Stdio::null())
    .kill_on_drop(true);
    match tokio::time::timeout(SOURCE_WAIT, cmd.output()).await {
        Err(_) => "(journalctl did not answer in time)\n".into(),
        Ok(Err(e)) => format!("(no journal: journalctl: {e})\n"),
        Ok(Ok(out)) if !out.status.success() => {
            format!("(no journal: journalctl exited with {})\n", out.status)
        }
        Ok(Ok(out)) if out.stdout.is_empty() => {
            "(no journal entries for ecs-boot in this boot: not run by systemd?)\n".into()
        }
        Ok(Ok(out)) => keep_tail(&String::from_utf8_lossy(&out.stdout), JOURNAL_CAP),
    }
}

/// The system containers' last log lines, each container under a header.
async fn container_logs(scope: &crate::containers::Scope) -> String {
    if !scope.engine.may_exist() {
        return "(no Docker engine on this host)\n".into();
    }
    let work = async {
        let docker = crate::containers::engine::connect(&scope.engine, SOURCE_WAIT).await?;
        let ours = crate::containers::engine::list_ours(&docker, &scope.label).await?;
        let mut out = String::new();
        for (name, observed) in ours.iter().take(MAX_CONTAINERS) {
            let opts = bollard::query_parameters::LogsOptionsBuilder::new()
                .stdout(true)
                .stderr(true)
                .timestamps(true)
                .tail(CONTAINER_TAIL_LINES)
                .build();
            let mut stream = docker.logs(&observed.id, Some(opts));
            let mut text = String::new();
            while let Some(chunk) = stream.next().await {
                match chunk {
                    Ok(c) => text.push_str(&String::from_utf8_lossy(&c.into_bytes())),
                    Err(e) => {
                        text.push_str(&format!(
                            "(reading logs: {})\n",
                            crate::containers::engine::one_line(&e)
                        ));
                        break;
                    }
                }
                if text.len() > 2 * CONTAINER_LOG_CAP {
                    text = keep_tail(&text, CONTAINER_LOG_CAP);
                }
            }
            out.push_str(&format!("==> {name} ({:?}) <==\n", observed.state));
            out.push_str(&keep_tail(&text, CONTAINER_LOG_CAP));
            out.push('\n');
        }
        if ours.is_empty() {
            out.push_str("(no system containers)\n");
        }
        Ok::<String, String>(out)
    };
    match tokio::time::timeout(SOURCE_WAIT * 2, work).await {
        Err(_) => "(the Docker engine did not answer in time)\n".into(),
        Ok(Err(e)) => format!("(no container logs: {e})\n"),
        Ok(Ok(out)) => keep_tail(&out, CONTAINERS_CAP),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_long_file_keeps_its_tail_from_a_whole_line() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("log");
        let text: String = (0..1000).map(|i| format!("line {i}\n")).collect();
        std::fs::write(&p, &text).unwrap();
        let tail = read_tail(&p, 100).unwrap();
        assert!(tail.len() < 160 && tail.ends_with("line 999\n"), "{tail}");
        assert!(tail.lines().nth(1).unwrap().starts_with("line "), "{tail}");
        assert_eq!(read_tail(&p, 1 << 20).unwrap(), text);
    }

    #[test]
    fn keep_tail_respects_char_boundaries() {
        let s = "é".repeat(100);
        let t = keep_tail(&s, 51);
        assert!(t.ends_with('é') && t.len() < 100, "{t}");
    }
}
