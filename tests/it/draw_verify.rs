//! `boxoffice verify-draw`, the command a buyer runs, against a shop that publishes a draw:
//! an honest draw gives the receipt's place; each published value tampered with makes it fail.

use std::sync::{Arc, Mutex};
use tokio::process::Command;

use boxoffice::config::Secret;
use boxoffice::draw::beacon::{Beacon, BeaconChain, LocalBeacon};
use boxoffice::draw::fetch::draw_path;
use boxoffice::draw::published::{DrawResult, PublishedDraw};
use boxoffice::draw::receipt::{Receipt, ReceiptSigner};
use boxoffice::draw::{ALGORITHM, Digest, EntryId, ServerSeed};
use chrono::Utc;
use uuid::Uuid;

/// A stand-in shop serving one draw at its API path, which the test may change.
struct DrawShop {
    base: String,
    draw: Arc<Mutex<PublishedDraw>>,
}

impl DrawShop {
    async fn serve(draw: PublishedDraw) -> DrawShop {
        use poem::listener::{Acceptor, Listener, TcpListener};
        use poem::{EndpointExt, Route, Server, get, handler, web::Data, web::Json};
        #[handler]
        fn published(Data(draw): Data<&Arc<Mutex<PublishedDraw>>>) -> Json<PublishedDraw> {
            Json(draw.lock().unwrap().clone())
        }
        let shared = Arc::new(Mutex::new(draw.clone()));
        let app = Route::new()
            .at(draw_path(draw.sale), get(published))
            .data(shared.clone());
        let acceptor = TcpListener::bind("127.0.0.1:0").into_acceptor().await.unwrap();
        let port = acceptor.local_addr()[0].as_socket_addr().unwrap().port();
        tokio::spawn(Server::new_with_acceptor(acceptor).run(app));
        let base = format!("http://127.0.0.1:{port}");
        DrawShop { base, draw: shared }
    }

    fn change(&self, tamper: impl FnOnce(&mut PublishedDraw)) {
        tamper(&mut self.draw.lock().unwrap());
    }
}

/// Runs `boxoffice verify-draw` against the shop at `base`; its success and what it printed.
pub(crate) async fn run_verify_draw(base: &str, sale: Uuid, receipt: &str, trusted: Option<&str>) -> (bool, String) {
    let mut command = Command::new(env!("CARGO_BIN_EXE_boxoffice"));
    command.args([
        "verify-draw",
        "--sale",
        &sale.to_string(),
        "--receipt",
        receipt,
        "--shop",
        base,
    ]);
    if let Some(key) = trusted {
        command.args(["--trust-local-beacon", key]);
    }
    let output = command.output().await.expect("the binary runs");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    (output.status.success(), text)
}

async fn verify(shop: &DrawShop, sale: Uuid, receipt: &Receipt, trusted: Option<&str>) -> (bool, String) {
    run_verify_draw(&shop.base, sale, &receipt.to_string(), trusted).await
}

#[tokio::test]
async fn verify_draw_confirms_an_honest_draw_and_refuses_each_tampered_value() {
    let sale = Uuid::new_v4();
    let shop_key = ReceiptSigner::from_secret(&Secret::new("a-long-enough-secret-of-32-characters".into()));
    let beacon = LocalBeacon::new([3; 32], Utc::now() - chrono::Duration::hours(1), 3);
    let BeaconChain::Local { public_key, .. } = beacon.chain() else {
        unreachable!()
    };
    let trusted = public_key.to_string();
    let receipts: Vec<Receipt> = (0..30).map(|_| shop_key.issue(sale, EntryId::random())).collect();
    let hashes: Vec<Digest> = receipts.iter().map(|r| r.entry.hash()).collect();
    let server_seed = ServerSeed::random();
    let frozen_at = Utc::now() - chrono::Duration::minutes(5);
    let round = beacon.sign(beacon.chain().first_round_after(frozen_at));
    let result = DrawResult::compute(&server_seed, frozen_at, &hashes, round);
    let draw = PublishedDraw {
        algorithm: ALGORITHM.into(),
        sale,
        commitment: server_seed.commitment(),
        receipt_key: shop_key.public_key(),
        beacon_chain: beacon.chain(),
        result: Some(result.clone()),
    };
    let shop = DrawShop::serve(draw.clone()).await;
    let mine = &receipts[7];
    let my_place = result
        .entries
        .iter()
        .find(|e| e.entry_hash == mine.entry.hash())
        .unwrap()
        .place;

    let (ok, out) = verify(&shop, sale, mine, Some(&trusted)).await;
    assert!(ok, "{out}");
    assert!(out.contains(&format!("your place   {my_place} of 30")), "{out}");

    let (ok, out) = verify(&shop, sale, mine, None).await;
    assert!(
        !ok && out.contains("local beacon"),
        "an untrusted local beacon is refused: {out}"
    );

    type Tamper = Box<dyn Fn(&mut PublishedDraw)>;
    let tampers: Vec<(&str, &str, Tamper)> = vec![
        ("commitment", "commitment", Box::new(|d| d.commitment = Digest([0; 32]))),
        (
            "server seed",
            "commitment",
            Box::new(|d| d.result.as_mut().unwrap().server_seed = Digest([1; 32])),
        ),
        (
            "list hash",
            "list hash",
            Box::new(|d| d.result.as_mut().unwrap().list_hash = Digest([2; 32])),
        ),
        (
            "entry dropped",
            "list hash",
            Box::new(|d| {
                d.result.as_mut().unwrap().entries.pop();
            }),
        ),
        (
            "beacon signature",
            "signature",
            Box::new(|d| d.result.as_mut().unwrap().beacon.signature[0] ^= 1),
        ),
        (
            "beacon round",
            "beacon round",
            Box::new(|d| d.result.as_mut().unwrap().beacon.round += 1),
        ),
        (
            "seed",
            "seed",
            Box::new(|d| d.result.as_mut().unwrap().seed = Digest([3; 32])),
        ),
        (
            "order",
            "order",
            Box::new(|d| d.result.as_mut().unwrap().entries.swap(0, 1)),
        ),
        (
            "receipt key",
            "receipt",
            Box::new(|d| d.receipt_key = ReceiptSigner::from_secret(&Secret::new("z".repeat(32))).public_key()),
        ),
    ];
    for (what, says, tamper) in tampers {
        shop.change(|d| {
            *d = draw.clone();
            tamper(d);
        });
        let (ok, out) = verify(&shop, sale, mine, Some(&trusted)).await;
        assert!(!ok, "a tampered {what} passed: {out}");
        assert!(out.contains(says), "a tampered {what} is named ({says}): {out}");
    }

    shop.change(|d| *d = draw.clone());
    let forged = Receipt {
        entry: EntryId::random(),
        ..mine.clone()
    };
    let (ok, out) = verify(&shop, sale, &forged, Some(&trusted)).await;
    assert!(!ok && out.contains("receipt"), "a forged receipt is refused: {out}");
    let (ok, out) = verify(&shop, Uuid::new_v4(), mine, Some(&trusted)).await;
    assert!(
        !ok && out.contains("Failed to fetch"),
        "another sale's draw is not there: {out}"
    );
}

/// The production beacon's HTTP client against a stand-in drand relay serving quicknet round
/// 123 as recorded from `api3.drand.sh`: the real round verifies, a round still in the future
/// is "not yet", and a relay that alters a signature is caught.
#[tokio::test]
async fn the_drand_client_checks_what_a_relay_serves() {
    use boxoffice::draw::beacon::{Beacon, BeaconError, BeaconRound, DrandHttp};
    use poem::listener::{Acceptor, Listener, TcpListener};
    use poem::{Route, Server, get, handler, http::StatusCode, web::Json, web::Path};

    const SIGNATURE_123: &str =
        "b75c69d0b72a5d906e854e808ba7e2accb1542ac355ae486d591aa9d43765482e26cd02df835d3546d23c4b13e0dfc92";
    #[handler]
    fn public(Path((_, round)): Path<(String, u64)>) -> poem::Result<Json<serde_json::Value>> {
        let mut signature = hex::decode(SIGNATURE_123).unwrap();
        match round {
            123 => {}
            // A relay that hands out round 123's signature, altered, as round 122.
            122 => signature[5] ^= 1,
            _ => return Err(poem::Error::from_status(StatusCode::from_u16(425).unwrap())),
        }
        let randomness = BeaconRound {
            round,
            signature: signature.clone(),
        }
        .randomness();
        Ok(Json(serde_json::json!({
            "round": round,
            "randomness": randomness.to_string(),
            "signature": hex::encode(signature),
        })))
    }
    let app = Route::new().at("/:chain/public/:round", get(public));
    let acceptor = TcpListener::bind("127.0.0.1:0").into_acceptor().await.unwrap();
    let port = acceptor.local_addr()[0].as_socket_addr().unwrap().port();
    tokio::spawn(Server::new_with_acceptor(acceptor).run(app));

    let drand = DrandHttp::new(reqwest::Client::new(), &format!("http://127.0.0.1:{port}"));
    let round = drand.fetch(123).await.unwrap();
    assert_eq!(hex::encode(&round.signature), SIGNATURE_123);
    assert_eq!(drand.fetch(124).await, Err(BeaconError::NotYet { round: 124 }));
    assert_eq!(drand.fetch(122).await, Err(BeaconError::BadSignature { round: 122 }));
}
