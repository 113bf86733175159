//! Reports: JSON with every figure as `{value, unit, target}`, and a Markdown summary.

use std::collections::BTreeMap;
use std::path::Path;

use serde::Serialize;

#[derive(Debug, Clone, Serialize)]
pub struct Figure {
    pub value: f64,
    pub unit: String,
    /// The target, as text (e.g. "≤ 6 KiB", "≥ 5000"); empty when the figure has none.
    pub target: String,
    /// Whether the value meets the target (`None` when there is no target).
    pub met: Option<bool>,
}

#[derive(Debug, Clone, Serialize)]
pub struct Machine {
    pub cores: usize,
    pub cpu_model: String,
    pub memory_gib: f64,
    pub os: String,
}

impl Machine {
    pub fn describe() -> Machine {
        let cpuinfo = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
        let cpu_model = cpuinfo
            .lines()
            .find(|l| l.starts_with("model name"))
            .and_then(|l| l.split(':').nth(1))
            .map(|s| s.trim().to_string())
            .unwrap_or_else(|| "unknown".into());
        let meminfo = std::fs::read_to_string("/proc/meminfo").unwrap_or_default();
        let mem_kib: f64 = meminfo
            .lines()
            .find(|l| l.starts_with("MemTotal"))
            .and_then(|l| l.split_whitespace().nth(1))
            .and_then(|v| v.parse().ok())
            .unwrap_or(0.0);
        let os = std::fs::read_to_string("/etc/os-release")
            .unwrap_or_default()
            .lines()
            .find_map(|l| l.strip_prefix("PRETTY_NAME="))
            .map(|s| s.trim_matches('"').to_string())
            .unwrap_or_else(|| "Linux".into());
        Machine {
            // The machine's cores, not this process's share (the generator pins itself).
            cores: std::fs::read_to_string("/proc/cpuinfo")
                .map(|c| c.lines().filter(|l| l.starts_with("processor")).count())
                .ok()
                .filter(|n| *n > 0)
                .unwrap_or_else(|| {
                    std::thread::available_parallelism()
                        .map(|n| n.get())
                        .unwrap_or(1)
                }),
            cpu_model,
            memory_gib: (mem_kib / 1024.0 / 1024.0 * 10.0).round() / 10.0,
            os,
        }
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct Report {
    pub scenario: String,
    pub started_at: String,
    pub machine: Machine,
    pub parameters: BTreeMap<String, serde_json::Value>,
    pub figures: BTreeMap<String, Figure>,
    /// CPU use of the generator and the hub, in cores (1.0 = one core busy).
    pub generator_cpu_cores: f64,
    pub hub_cpu_cores: f64,
    /// True when the generator was busy enough to be the bottleneck: figures are then a
    /// lower bound of what the hub can do.
    pub generator_saturated: bool,
    pub notes: Vec<String>,
}

impl Report {
    pub fn new(scenario: &str) -> Report {
        Report {
            scenario: scenario.into(),
            started_at: chrono::Utc::now().to_rfc3339(),
            machine: Machine::describe(),
            parameters: BTreeMap::new(),
            figures: BTreeMap::new(),
            generator_cpu_cores: 0.0,
            hub_cpu_cores: 0.0,
            generator_saturated: false,
            notes: Vec::new(),
        }
    }

    pub fn param(&mut self, name: &str, value: impl Serialize) {
        self.parameters.insert(
            name.into(),
            serde_json::to_value(value).expect("serialisable"),
        );
    }

    /// A figure; `target` like "<= 6" or ">= 5000" (empty: none).
    pub fn figure(&mut self, name: &str, value: f64, unit: &str, target: &str) {
        let met = parse_target(target)
            .map(|(le, bound)| if le { value <= bound } else { value >= bound });
        self.figures.insert(
            name.into(),
            Figure {
                value: (value * 100.0).round() / 100.0,
                unit: unit.into(),
                target: target.into(),
                met,
            },
        );
    }

    pub fn note(&mut self, text: impl Into<String>) {
        self.notes.push(text.into());
    }

    pub fn markdown(&self) -> String {
        let mut md = format!("# Load scenario `{}`\n\n", self.scenario);
        md.push_str(&format!(
            "Run {} on {} cores ({}), {} GiB, {}.\n\n",
            self.started_at,
            self.machine.cores,
            self.machine.cpu_model,
            self.machine.memory_gib,
            self.machine.os
        ));
        md.push_str("| parameter | value |\n| --- | --- |\n");
        for (k, v) in &self.parameters {
            md.push_str(&format!("| {k} | {v} |\n"));
        }
        md.push_str(
            "\n| figure | value | unit | target | met |\n| --- | --- | --- | --- | --- |\n",
        );
        for (k, f) in &self.figures {
            let met = match f.met {
                Some(true) => "yes",
                Some(false) => "**no**",
                None => "",
            };
            md.push_str(&format!(
                "| {k} | {} | {} | {} | {met} |\n",
                f.value, f.unit, f.target
            ));
        }
        md.push_str(&format!(
            "\nCPU: hub {:.2} cores, generator {:.2} cores{}.\n",
            self.hub_cpu_cores,
            self.generator_cpu_cores,
            if self.generator_saturated {
                " — **generator saturated: figures are a lower bound**"
            } else {
                ""
            }
        ));
        for n in &self.notes {
            md.push_str(&format!("\n- {n}"));
        }
        md.push('\n');
        md
    }

    pub fn write(&self, dir: &Path) -> anyhow::Result<()> {
        std::fs::create_dir_all(dir)?;
        std::fs::write(
            dir.join(format!("{}.json", self.scenario)),
            serde_json::to_string_pretty(self)? + "\n",
        )?;
        std::fs::write(dir.join(format!("{}.md", self.scenario)), self.markdown())?;
        Ok(())
    }

    pub fn print(&self) {
        println!("{}", self.markdown());
    }
}

fn parse_target(t: &str) -> Option<(bool, f64)> {
    let t = t.trim();
    if let Some(v) = t.strip_prefix("<=") {
        return v.trim().parse().ok().map(|b| (true, b));
    }
    if let Some(v) = t.strip_prefix(">=") {
        return v.trim().parse().ok().map(|b| (false, b));
    }
    None
}

/// CPU time (user + system) of a process in seconds, from /proc.
pub fn cpu_seconds(pid: u32) -> f64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    // Fields after the command name (which may contain spaces) start after the last ')'.
    let rest = stat.rsplit(')').next().unwrap_or("");
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let ticks = unsafe { libc::sysconf(libc::_SC_CLK_TCK) } as f64;
    let utime: f64 = fields.get(11).and_then(|v| v.parse().ok()).unwrap_or(0.0);
    let stime: f64 = fields.get(12).and_then(|v| v.parse().ok()).unwrap_or(0.0);
    (utime + stime) / ticks.max(1.0)
}

/// Resident memory of a process in KiB.
pub fn rss_kib(pid: u32) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .unwrap_or_default()
        .lines()
        .find(|l| l.starts_with("VmRSS:"))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|v| v.parse().ok())
        .unwrap_or(0)
}

/// Measures CPU use of the hub and this process over a span.
pub struct CpuMeter {
    hub: Vec<u32>,
    hub_start: f64,
    own_start: f64,
    at: std::time::Instant,
}

impl CpuMeter {
    pub fn start(hub: &[u32]) -> CpuMeter {
        CpuMeter {
            hub: hub.to_vec(),
            hub_start: hub.iter().map(|p| cpu_seconds(*p)).sum(),
            own_start: cpu_seconds(std::process::id()),
            at: std::time::Instant::now(),
        }
    }

    /// (hub cores, generator cores) averaged over the span.
    pub fn stop(&self) -> (f64, f64) {
        let secs = self.at.elapsed().as_secs_f64().max(0.001);
        let hub: f64 = self.hub.iter().map(|p| cpu_seconds(*p)).sum::<f64>() - self.hub_start;
        let own = cpu_seconds(std::process::id()) - self.own_start;
        (hub / secs, own / secs)
    }
}
