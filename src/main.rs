use boxoffice::config::Settings;
use boxoffice::startup::Application;
use clap::{Parser, Subcommand};

/// boxoffice: a ticket shop with a fair virtual waiting room.
#[derive(Parser)]
#[command(version)]
struct Cli {
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Subcommand)]
enum Command {
    /// Serve the shop (the default).
    Serve,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    boxoffice::telemetry::init();
    let cli = Cli::parse();
    let settings = Settings::from_env()?;
    match cli.command.unwrap_or(Command::Serve) {
        Command::Serve => {
            let app = Application::build(settings).await?;
            app.run_until_stopped(boxoffice::startup::shutdown_signal()).await?;
        }
    }
    Ok(())
}
