use std::io::{BufRead, IsTerminal};

use anyhow::Context;
use boxoffice::admin::Organizer;
use boxoffice::admin::forms::{Email, NewPassword};
use boxoffice::config::Settings;
use boxoffice::db;
use boxoffice::startup::Application;
use clap::{CommandFactory, Parser, Subcommand};

/// mimalloc, not the C library's malloc: every request allocates and frees its futures (some
/// kilobytes: poem boxes its layers' futures), headers and reply, which glibc's malloc served
/// from its slow bins (see BENCHMARKS.md).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

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
    /// Check a sale's published pre-queue draw against your receipt: the commitment, the
    /// entry list's hash, the beacon round and its signature, the seed, the whole order and
    /// your place. Prints your place; exits with status 1 at the first thing that does not hold.
    VerifyDraw {
        /// The sale's id.
        #[arg(long)]
        sale: uuid::Uuid,
        /// Your receipt as the shop gave it (`v1.<sale>.<entry>.<signature>`), or `@FILE` to
        /// read it from a file.
        #[arg(long)]
        receipt: String,
        /// The shop's address.
        #[arg(long, default_value = "http://127.0.0.1:8080")]
        shop: String,
        /// Accept a draw made with a local beacon of this public key (64 hex digits). A local
        /// beacon is for tests and offline demos: its holder could choose its value.
        #[arg(long)]
        trust_local_beacon: Option<String>,
    },
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
        Command::VerifyDraw {
            sale,
            receipt,
            shop,
            trust_local_beacon,
        } => verify_draw(sale, &receipt, &shop, trust_local_beacon.as_deref()).await?,
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

async fn verify_draw(
    sale: uuid::Uuid,
    receipt: &str,
    shop: &str,
    trust_local_beacon: Option<&str>,
) -> anyhow::Result<()> {
    use boxoffice::draw::beacon::BeaconChain;
    use boxoffice::draw::receipt::{PublicKey, Receipt};
    let receipt = match receipt.strip_prefix('@') {
        Some(path) => {
            std::fs::read_to_string(path).with_context(|| format!("Failed to read the receipt from {path}"))?
        }
        None => receipt.to_string(),
    };
    let receipt: Receipt = receipt.parse()?;
    let trusted: Option<PublicKey> = trust_local_beacon
        .map(str::parse)
        .transpose()
        .map_err(|e| anyhow::anyhow!("--trust-local-beacon: {e}"))?;
    let client = reqwest::Client::new();
    let (draw, place) =
        boxoffice::draw::fetch::fetch_and_check(&client, shop, sale, &receipt, trusted.as_ref()).await?;
    let result = draw.result.as_ref().context("a checked draw has a result")?;
    let beacon = match draw.beacon_chain {
        BeaconChain::DrandQuicknet => "drand quicknet, BLS signature verified",
        BeaconChain::Local { .. } => "a local beacon you chose to trust",
    };
    println!("commitment   {} = SHA-256(revealed server seed)", draw.commitment);
    println!(
        "entry list   {} entries, hash {}",
        result.entries.len(),
        result.list_hash
    );
    println!(
        "beacon       round {} ({beacon}), the first after the freeze at {}",
        result.beacon.round, result.frozen_at
    );
    println!("seed         {} (every place recomputed)", result.seed);
    println!("your place   {place} of {}", result.entries.len());
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
