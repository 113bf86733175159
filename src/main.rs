use clap::Parser;

/// mimalloc: under a storm of connects glibc's allocator took a seventh of the hub's core.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> anyhow::Result<()> {
    let mut runtime = tokio::runtime::Builder::new_multi_thread();
    runtime.enable_all();
    #[cfg(tokio_unstable)]
    long_polls::install(&mut runtime);
    runtime
        .build()?
        .block_on(jobers::cli::run(jobers::cli::Cli::parse()))
}

/// A diagnostic for builds with `RUSTFLAGS="--cfg tokio_unstable"`: with
/// `LONG_POLLS_FILE=FILE`, every task poll that holds a worker for 1 ms or more is
/// written to FILE as `end (ns since the epoch) duration (µs) spawned-at`, to find what
/// holds the runtime when it is late (see loadtests/README.md).
#[cfg(tokio_unstable)]
mod long_polls {
    use std::cell::Cell;
    use std::io::Write;
    use std::sync::mpsc;
    use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

    const LONG: Duration = Duration::from_millis(1);

    thread_local! {
        static STARTED: Cell<Option<Instant>> = const { Cell::new(None) };
    }

    pub fn install(runtime: &mut tokio::runtime::Builder) {
        let Ok(path) = std::env::var("LONG_POLLS_FILE") else {
            return;
        };
        let mut file = std::io::BufWriter::new(std::fs::File::create(path).expect("trace file"));
        let (tx, rx) = mpsc::channel::<(u128, u128, &'static std::panic::Location<'static>)>();
        std::thread::spawn(move || {
            for (end, took, at) in rx {
                let _ = writeln!(file, "{end} {took} {}:{}", at.file(), at.line());
                let _ = file.flush();
            }
        });
        runtime
            .on_before_task_poll(|_| STARTED.with(|s| s.set(Some(Instant::now()))))
            .on_after_task_poll(move |meta| {
                let Some(started) = STARTED.with(|s| s.take()) else {
                    return;
                };
                let took = started.elapsed();
                if took >= LONG {
                    let end = SystemTime::now()
                        .duration_since(UNIX_EPOCH)
                        .unwrap_or_default()
                        .as_nanos();
                    let _ = tx.send((end, took.as_micros(), meta.spawned_at()));
                }
            });
    }
}
