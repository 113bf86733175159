//! The kernel's proactive reclaim (DAMON), which some virtual machines run: it pages out
//! memory it found unused for a while, judged by regions of physical memory. Pages the hub
//! writes without reading them (SQLite's log) look unused to it, and it evicts them while
//! they are in use: the next write into such a page reads it back from the disk first,
//! with every send waiting (`direct` on SQLite: 1,000 such waits in 12 s, p99 11–25 ms
//! instead of 9–13 with reclaim paused). `--pause-reclaim` pauses it for a run, as
//! `--drop-caches` drops the page cache: so that runs measure the hub, not the host.
//!
//! Free page reporting (virtio-balloon), which other virtual machines run, hands the
//! guest's free memory back to the host; the next use of such a page waits for the host to
//! back it again. On one such machine writing 19 GiB into fresh memory took 53.5 s the
//! first time and 8.7 s the second, and `direct` on SQLite, whose database and log grow
//! into new page-cache pages all the time, went from p50 7–43 ms to 1–2 s (the hub's core
//! idle a third of the time, its threads waiting for the host). `--pause-reclaim` also
//! stops the reporting for the run (no free block is large enough to be reported) and
//! [`back_memory`] touches free memory before each run's database is made, so that the
//! run's new pages are backed ones.

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

/// The order from which free blocks are reported to the host, where the guest reports.
const REPORTING_ORDER: &str = "/sys/module/page_reporting/parameters/page_reporting_order";
/// One more than the largest order of a free block (`MAX_PAGE_ORDER` is 10 on x86-64):
/// no block is reported.
const NO_REPORTING: &str = "11";
/// The largest order of a free block: only such blocks are reported.
const LARGEST_ORDER: &str = "10";
/// Memory [`back_memory`] touches before a run: more than a run's new pages (the
/// database, its log, the hub's heap).
const BACKED_BYTES: usize = 8 << 30;

/// Reclaim paused while this lives; resumed when it is dropped (the run ended, failed or
/// panicked).
pub struct Paused {
    states: Vec<PathBuf>,
    /// The reporting order to put back.
    reporting: Option<String>,
}

impl Paused {
    /// Whether free page reporting is paused, so that memory touched now stays backed.
    pub fn reporting_paused(&self) -> bool {
        self.reporting.is_some()
    }
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
        if let Some(order) = &self.reporting {
            if let Err(e) = std::fs::write(REPORTING_ORDER, order) {
                eprintln!("could not resume free page reporting ({REPORTING_ORDER}): {e}");
            }
        }
    }
}

/// Touches free memory and frees it again, with reporting paused: the pages the run
/// takes next (freed last, they are taken first) are then backed by the host.
pub fn back_memory() {
    let touched = vec![1u8; BACKED_BYTES];
    std::hint::black_box(&touched);
}

/// The reporting order now, where the guest reports free pages and has not stopped.
fn reporting() -> Option<String> {
    let order = std::fs::read_to_string(REPORTING_ORDER).ok()?;
    let order = order.trim().to_string();
    (order != NO_REPORTING).then_some(order)
}

/// What a run's report says about reclaim, and the pause when `pause` asks for one.
pub fn prepare(pause: bool) -> anyhow::Result<(Option<Paused>, Vec<String>)> {
    let states = running();
    let reporting = reporting();
    let mut notes = Vec::new();
    if !pause {
        if !states.is_empty() {
            notes.push("The kernel's proactive reclaim (DAMON) was on during the run; it evicts pages the hub is using (see loadtests/README.md, --pause-reclaim).".into());
        }
        if reporting.is_some() {
            notes.push("Free page reporting was on during the run: the guest's free memory goes back to the host, and each new page the run takes waits for the host (see loadtests/README.md, --pause-reclaim).".into());
        }
        return Ok((None, notes));
    }
    let mut paused = Paused {
        states: Vec::new(),
        reporting: None,
    };
    for state in states {
        std::fs::write(&state, "off").map_err(|e| {
            anyhow::anyhow!("--pause-reclaim needs root ({}: {e})", state.display())
        })?;
        paused.states.push(state);
    }
    if !paused.states.is_empty() {
        notes.push("The kernel's proactive reclaim (DAMON) was paused for the run and resumed after it (--pause-reclaim).".into());
    }
    if let Some(order) = reporting {
        // Kernels that check the order take no more than the largest block's: then only
        // blocks of that size (4 MiB) are reported, and few stay free that long in a run.
        let how = if std::fs::write(REPORTING_ORDER, NO_REPORTING).is_ok() {
            "paused"
        } else {
            std::fs::write(REPORTING_ORDER, LARGEST_ORDER).map_err(|e| {
                anyhow::anyhow!(
                    "--pause-reclaim could not pause free page reporting ({REPORTING_ORDER}: {e})"
                )
            })?;
            "limited to the largest free blocks"
        };
        paused.reporting = Some(order);
        notes.push(format!("Free page reporting was {how} for the run and resumed after it, and {} GiB of free memory were touched before each run's database was made, so that the run's new pages were backed by the host (--pause-reclaim).", BACKED_BYTES >> 30));
    }
    Ok((Some(paused), notes))
}
