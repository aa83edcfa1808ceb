use std::io::{BufRead, IsTerminal};

use anyhow::Context;
use boxoffice::admin::Organizer;
use boxoffice::admin::forms::{Email, NewPassword};
use boxoffice::config::Settings;
use boxoffice::db;
use boxoffice::startup::Application;
use clap::{CommandFactory, Parser, Subcommand};

/// boxoffice: a ticket shop with a fair virtual waiting room.
///
/// Every setting below is read from its environment variable; the flag, given before the
/// command, wins over it.
#[derive(Parser)]
#[command(version)]
struct Cli {
    #[command(subcommand)]
    command: Option<Command>,
    #[command(flatten)]
    settings: Settings,
}

#[derive(Subcommand)]
enum Command {
    /// Serve the shop (the default).
    Serve,
    /// Manage organizer accounts (needs only `DATABASE_URL`).
    #[command(subcommand)]
    Organizer(OrganizerCommand),
    /// Serve the shop with a demo organizer, a demo sale and a simulated crowd buying from it.
    Demo,
}

#[derive(Subcommand)]
enum OrganizerCommand {
    /// Create an organizer account; the password comes from a prompt, or from the first line
    /// of standard input when that is not a terminal.
    Create {
        #[arg(long)]
        email: String,
    },
    /// Print a new API token for an organizer (shown this once; only its hash is kept).
    Token {
        #[arg(long)]
        email: String,
        /// A note to tell tokens apart in the portal.
        #[arg(long, default_value = "command line")]
        label: String,
    },
    /// Print a one-time invite link path (`/admin/sign-up?invite=…`) from an organizer, for
    /// `BOXOFFICE_SIGNUP=invite`; it works once, for 7 days.
    Invite {
        /// The organizer the invite comes from.
        #[arg(long)]
        email: String,
    },
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    let settings = cli.settings;
    if let Err(e) = settings.validate() {
        Cli::command().error(clap::error::ErrorKind::ArgumentConflict, e).exit();
    }
    match cli.command.unwrap_or(Command::Serve) {
        Command::Serve => {
            boxoffice::telemetry::init();
            let app = Application::build(settings).await?;
            app.run_until_stopped(boxoffice::startup::shutdown_signal()).await?;
        }
        // No logs here: standard output carries the token, for `$(boxoffice organizer token ...)`.
        Command::Organizer(cmd) => organizer(cmd, &settings).await?,
        Command::Demo => boxoffice::demo::run(settings).await?,
    }
    Ok(())
}

async fn organizer(cmd: OrganizerCommand, settings: &Settings) -> anyhow::Result<()> {
    let pool = db::connect_and_migrate(&settings.database_url)
        .await
        .context("Failed to connect to Postgres")?;
    match cmd {
        OrganizerCommand::Create { email } => {
            let email = Email::parse(&email).map_err(anyhow::Error::msg)?;
            let password = read_password()?;
            let password = NewPassword::parse(&password).map_err(anyhow::Error::msg)?;
            boxoffice::admin::create_organizer(&pool, &email, &password)
                .await
                .map_err(|e| match e {
                    boxoffice::admin::AdminError::Invalid(f) => {
                        anyhow::anyhow!("{}", f.get("email").unwrap_or("invalid input"))
                    }
                    e => anyhow::Error::new(e).context("Failed to create the account"),
                })?;
            println!("Organizer account created; sign in at /admin.");
        }
        OrganizerCommand::Token { email, label } => {
            let account = find_organizer(&pool, &email).await?;
            let token = boxoffice::admin::issue_token(&pool, Organizer(account.id), &label).await?;
            println!("{token}");
        }
        OrganizerCommand::Invite { email } => {
            let account = find_organizer(&pool, &email).await?;
            let link = boxoffice::admin::issue_invite(&pool, Organizer(account.id)).await?;
            println!("{link}");
        }
    }
    pool.close().await;
    Ok(())
}

/// The organizer with this email, or an error that says there is none.
async fn find_organizer(pool: &sqlx::PgPool, email: &str) -> anyhow::Result<db::organizers::Organizer> {
    let email = Email::parse(email).map_err(anyhow::Error::msg)?;
    db::organizers::find_by_email(pool, email.as_str())
        .await?
        .context("There is no organizer with that email.")
}

/// A password from a prompt without echo on a terminal, else the first line of stdin.
fn read_password() -> anyhow::Result<String> {
    if std::io::stdin().is_terminal() {
        let first = rpassword::prompt_password("Password: ")?;
        let again = rpassword::prompt_password("Password again: ")?;
        anyhow::ensure!(first == again, "The two passwords differ.");
        Ok(first)
    } else {
        let mut line = String::new();
        std::io::stdin().lock().read_line(&mut line)?;
        Ok(line.trim_end_matches(['\r', '\n']).to_string())
    }
}
