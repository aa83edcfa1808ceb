//! The baseline of the black-box checks: poem answering `GET /bare`, and any other path under
//! `/any/` (for a client that sends the polls' varied paths and cookies), with a fixed string on
//! the address given as the first argument, nothing else.
use poem::{get, handler, listener::TcpListener, Route, Server};
#[handler]
fn bare() -> &'static str {
    "ok"
}
#[tokio::main]
async fn main() -> Result<(), std::io::Error> {
    let addr = std::env::args().nth(1).unwrap_or_else(|| "127.0.0.1:18090".into());
    Server::new(TcpListener::bind(addr))
        .run(Route::new().at("/bare", get(bare)).at("/any/*rest", get(bare)))
        .await
}
