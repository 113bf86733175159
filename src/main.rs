use clap::Parser;

/// mimalloc: under a storm of connects glibc's allocator took a seventh of the hub's core.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    jobers::cli::run(jobers::cli::Cli::parse()).await
}
