use clap::Parser;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    jobers::cli::run(jobers::cli::Cli::parse()).await
}
