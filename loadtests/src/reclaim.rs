//! The kernel's proactive reclaim (DAMON), which some virtual machines run: it pages out
//! memory it found unused for a while, judged by regions of physical memory. Pages the hub
//! writes without reading them (SQLite's log) look unused to it, and it evicts them while
//! they are in use: the next write into such a page reads it back from the disk first,
//! with every send waiting (`direct` on SQLite: 1,000 such waits in 12 s, p99 11–25 ms
//! instead of 9–13 with reclaim paused). `--pause-reclaim` pauses it for a run, as
//! `--drop-caches` drops the page cache: so that runs measure the hub, not the host.

use std::path::PathBuf;

const KDAMONDS: &str = "/sys/kernel/mm/damon/admin/kdamonds";

/// The state files of the kdamonds that run now.
fn running() -> Vec<PathBuf> {
    let Ok(entries) = std::fs::read_dir(KDAMONDS) else {
        return Vec::new();
    };
    entries
        .filter_map(|e| e.ok())
        .map(|e| e.path().join("state"))
        .filter(|state| std::fs::read_to_string(state).is_ok_and(|s| s.trim() == "on"))
        .collect()
}

/// Reclaim paused while this lives; resumed when it is dropped (the run ended, failed or
/// panicked).
pub struct Paused {
    states: Vec<PathBuf>,
}

impl Drop for Paused {
    fn drop(&mut self) {
        for state in &self.states {
            if let Err(e) = std::fs::write(state, "on") {
                eprintln!(
                    "could not resume the kernel's reclaim ({}): {e}",
                    state.display()
                );
            }
        }
    }
}

/// What a run's report says about reclaim, and the pause when `pause` asks for one.
pub fn prepare(pause: bool) -> anyhow::Result<(Option<Paused>, Option<String>)> {
    let states = running();
    if states.is_empty() {
        return Ok((None, None));
    }
    if !pause {
        return Ok((
            None,
            Some("The kernel's proactive reclaim (DAMON) was on during the run; it evicts pages the hub is using (see loadtests/README.md, --pause-reclaim).".into()),
        ));
    }
    let mut paused = Paused { states: Vec::new() };
    for state in states {
        std::fs::write(&state, "off").map_err(|e| {
            anyhow::anyhow!("--pause-reclaim needs root ({}: {e})", state.display())
        })?;
        paused.states.push(state);
    }
    Ok((
        Some(paused),
        Some("The kernel's proactive reclaim (DAMON) was paused for the run and resumed after it (--pause-reclaim).".into()),
    ))
}
