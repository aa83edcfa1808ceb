//! Builds the application from settings: connections, the sale service, the routes (the web
//! edge with the organizer's portal and API in it), and the background reconciliation. Tests and load tests start it on port 0 exactly as `main` does.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use fred::prelude::Pool;
use poem::Server;
use poem::listener::{Acceptor, Listener, TcpListener};
use sqlx::PgPool;
use tracing::{info, warn};

use crate::config::Settings;
use crate::mail::Mailer;
use crate::sale::TicketSales;
use crate::{admin, db, mail, redis, web};

/// What every handler may use: one reference count to clone. The app hands it to every
/// request (poem's `.data` clones it into each request's extensions), where a clone of its
/// parts would count six references and copy the Stripe settings' strings.
#[derive(Clone)]
pub struct AppState(Arc<AppParts>);

impl AppState {
    /// The state of an app over `services`; what follows from the settings alone (the
    /// proof-of-work puzzles, the buyers' limits, the presence reporter and its task) is made
    /// here, the one place for the app and the tests.
    pub fn new(services: Services, settings: &Settings) -> AppState {
        let Services {
            sales,
            db,
            redis,
            session_redis,
            payments,
        } = services;
        AppState(Arc::new(AppParts {
            db,
            redis,
            session_redis,
            settings: Arc::new(settings.clone()),
            payments,
            puzzles: crate::pow::JoinPuzzles::new(&settings.secret, settings.pow()),
            limits: web::rate_limit::BuyerLimits::from_settings(settings),
            presence: web::presence::Presence::start(sales.clone(), settings.abandon_secs),
            sales,
        }))
    }
}

/// What the app connects to: the parts of [`AppState`] that are not made from the settings
/// alone.
pub struct Services {
    pub sales: TicketSales,
    pub db: PgPool,
    /// The sales' Redis.
    pub redis: Pool,
    /// The session store's Redis (the sales' pool unless configured apart).
    pub session_redis: Pool,
    /// Stripe, when configured.
    pub payments: Option<crate::payment::Payments>,
}

impl std::ops::Deref for AppState {
    type Target = AppParts;

    fn deref(&self) -> &AppParts {
        &self.0
    }
}

/// The services and settings of [`AppState`].
pub struct AppParts {
    pub sales: TicketSales,
    pub db: PgPool,
    /// The sales' Redis.
    pub redis: Pool,
    /// The session store's Redis: the sales' pool unless `BOXOFFICE_SESSION_REDIS_URL` names
    /// another server.
    pub session_redis: Pool,
    pub settings: Arc<Settings>,
    /// Stripe, when configured; without it orders are confirmed without payment.
    pub payments: Option<crate::payment::Payments>,
    /// The joins' proof-of-work challenges.
    pub puzzles: crate::pow::JoinPuzzles,
    /// The buyers' rate limits, per client address.
    pub limits: web::rate_limit::BuyerLimits,
    /// The waiting buyers whose polls were refused as too fast, reported as present.
    pub presence: web::presence::Presence,
}

#[derive(Debug, thiserror::Error)]
pub enum StartupError {
    #[error("Postgres at {url}: {source}")]
    Postgres { url: String, source: sqlx::Error },
    #[error("Redis: {0}")]
    Redis(#[from] fred::error::Error),
    #[error("the sale service: {0}")]
    Sales(#[from] crate::sale::SaleError),
    #[error("SMTP_URL: {0}")]
    Mail(#[from] lettre::transport::smtp::Error),
    #[error("Stripe: {0}")]
    Payment(String),
    #[error("cannot listen on {addr}: {source}")]
    Listen { addr: String, source: std::io::Error },
}

/// Connects to Postgres (creating and migrating the database) and Redis, retrying for a while
/// so that the app may start before its dependencies are ready.
pub async fn connect(settings: &Settings) -> Result<AppState, StartupError> {
    Ok(AppState::new(connect_services(settings).await?, settings))
}

/// [`connect`]'s connections alone, for a caller that makes no app of them (the tests' world).
pub async fn connect_services(settings: &Settings) -> Result<Services, StartupError> {
    let db = retry("Postgres", || db::connect_and_migrate(&settings.database_url))
        .await
        .map_err(|source| StartupError::Postgres {
            url: redact(&settings.database_url),
            source,
        })?;
    let payments = crate::payment::Payments::from_settings(settings).map_err(StartupError::Payment)?;
    let redis = retry("Redis", || redis::connect(settings)).await?;
    let session_redis = retry("the sessions' Redis", || redis::connect_sessions(settings))
        .await?
        .unwrap_or_else(|| redis.clone());
    let sales = TicketSales::new(redis.clone(), db.clone(), settings).await?;
    Ok(Services {
        sales,
        db,
        redis,
        session_redis,
        payments,
    })
}

async fn retry<T, E: std::fmt::Display, F: Future<Output = Result<T, E>>>(
    what: &str,
    f: impl Fn() -> F,
) -> Result<T, E> {
    let mut attempt = 1;
    loop {
        match f().await {
            Ok(v) => return Ok(v),
            Err(e) if attempt < 30 => {
                warn!(attempt, error = %e, "{what} is not ready; retrying");
                tokio::time::sleep(Duration::from_secs(1)).await;
                attempt += 1;
            }
            Err(e) => return Err(e),
        }
    }
}

/// The URL with any password replaced, for error messages.
fn redact(url: &str) -> String {
    match url
        .split_once("://")
        .and_then(|(scheme, rest)| Some((scheme, rest.split_once('@')?)))
    {
        Some((scheme, (creds, host))) => {
            let user = creds.split(':').next().unwrap_or("");
            format!("{scheme}://{user}:***@{host}")
        }
        None => url.to_string(),
    }
}

/// A running application: its bound port and the future that serves until shutdown.
pub struct Application {
    state: AppState,
    acceptor: poem::listener::TcpAcceptor,
    port: u16,
    mailer: Mailer,
}

impl Application {
    pub async fn build(settings: Settings) -> Result<Application, StartupError> {
        let state = connect(&settings).await?;
        Self::with_state(state).await
    }

    pub async fn with_state(state: AppState) -> Result<Application, StartupError> {
        let mailer = Mailer::from_settings(&state.settings)?;
        if state.settings.secret.was_generated() {
            warn!(
                "BOXOFFICE_SECRET is not set: a random key signs the order links in mails, so they \
                 stop working when this process stops and on other instances"
            );
        }
        let addr = state.settings.addr.to_string();
        let acceptor = TcpListener::bind(addr.clone())
            .into_acceptor()
            .await
            .map_err(|source| StartupError::Listen { addr, source })?;
        let port = acceptor
            .local_addr()
            .first()
            .and_then(|a| a.as_socket_addr().map(|s| s.port()))
            .unwrap_or_default();
        Ok(Application {
            state,
            acceptor,
            port,
            mailer,
        })
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    /// What the application serves with: its pools and settings, for a caller that runs
    /// beside it in the same process (the demo).
    pub fn state(&self) -> &AppState {
        &self.state
    }

    /// Serves until `shutdown` completes, then stops accepting, lets requests in flight
    /// finish (up to 10 s) and closes the pools.
    pub async fn run_until_stopped(self, shutdown: impl Future<Output = ()> + Send) -> std::io::Result<()> {
        let state = self.state.clone();
        let reconciler = tokio::spawn(reconcile_forever(state.sales.clone(), state.settings.reconcile_every));
        let sampler = tokio::spawn(admin::sampler::sample_forever(state.clone()));
        let draws = tokio::spawn(draw_forever(state.sales.clone()));
        let mail_sender = tokio::spawn(mail::send_forever(
            state.db.clone(),
            self.mailer,
            state.settings.clone(),
        ));
        let overdue = tokio::spawn(crate::payment::cancel_overdue_forever(
            state.db.clone(),
            state.sales.clone(),
            state.payments.clone(),
        ));
        let app = web::app(state.clone(), admin::pages(), admin::AdminApi);
        info!(port = self.port, "boxoffice is serving");
        let served = Server::new_with_acceptor(self.acceptor)
            .run_with_graceful_shutdown(app, shutdown, Some(Duration::from_secs(10)))
            .await;
        reconciler.abort();
        draws.abort();
        overdue.abort();
        sampler.abort();
        // A mail cut off mid-send keeps its lease and is sent again after it: at least once.
        mail_sender.abort();
        state.db.close().await;
        let _ = fred::prelude::ClientLike::quit(&state.redis).await;
        let _ = fred::prelude::ClientLike::quit(&state.session_redis).await;
        info!("boxoffice stopped");
        served
    }
}

/// Syncs every live sale from Postgres now and then: settles checkouts that were cut off
/// between Postgres and Redis, and rebuilds sales after Redis lost them.
async fn reconcile_forever(sales: TicketSales, every: Duration) {
    let mut tick = tokio::time::interval(every);
    loop {
        tick.tick().await;
        if let Err(e) = sales.sync_live_sales().await {
            warn!(error = %e, "reconciling sales failed; will retry");
        }
        if let Err(e) = sales.reconcile_waitlists().await {
            warn!(error = %e, "reconciling waitlists failed; will retry");
        }
    }
}

/// Runs the pre-queue draws whose opening has come, every second on every instance: the
/// first to get there draws, the others find it done (see `sale::prequeue`). Joins after the
/// opening wait for it, so it runs more often than the reconciliation.
async fn draw_forever(sales: TicketSales) {
    let mut tick = tokio::time::interval(Duration::from_secs(1));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        if let Err(e) = sales.run_due_draws().await {
            warn!(error = %e, "running the pre-queue draws failed; will retry");
        }
    }
}

/// Completes on Ctrl-C or SIGTERM.
pub async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        _ = ctrl_c => {},
        _ = term => {},
    }
}
