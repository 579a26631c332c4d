//! RS256 tokens through a JWKS URL served by a real local HTTP server, beside HS256.
//! The RSA keys in tests/fixtures are test-only keys made with `openssl genpkey`.

mod common;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Json;
use axum::extract::State;
use common::*;
use jsonwebtoken::{Algorithm, EncodingKey, Header, encode};
use referral_mcp::auth::{Authenticator, Claims, Credentials, Jwks, JwtConfig};
use referral_mcp::core::access::Via;
use referral_mcp::store::Store;
use serde_json::{Value, json};

const K1: &str = include_str!("fixtures/rsa_k1.pem");
const K2: &str = include_str!("fixtures/rsa_k2.pem");
const JWKS: &str = include_str!("fixtures/jwks_k1_k2.json");

struct Provider {
    keys: Mutex<Value>,
    hits: AtomicUsize,
}

async fn jwks(State(p): State<Arc<Provider>>) -> Json<Value> {
    p.hits.fetch_add(1, Ordering::SeqCst);
    Json(p.keys.lock().unwrap().clone())
}

/// A provider that first publishes only `k1`.
async fn provider() -> (Arc<Provider>, String) {
    let all: Value = serde_json::from_str(JWKS).unwrap();
    let only_k1 = json!({ "keys": [all["keys"][0].clone()] });
    let p = Arc::new(Provider {
        keys: Mutex::new(only_k1),
        hits: AtomicUsize::new(0),
    });
    let app = axum::Router::new()
        .route("/.well-known/jwks.json", axum::routing::get(jwks))
        .with_state(p.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!(
        "http://{}/.well-known/jwks.json",
        listener.local_addr().unwrap()
    );
    tokio::spawn(async move { axum::serve(listener, app).await });
    (p, url)
}

fn rs256(pem: &str, kid: &str, sub: &str, admin: bool, aud: &str) -> String {
    let mut header = Header::new(Algorithm::RS256);
    header.kid = Some(kid.to_owned());
    let claims = Claims {
        sub: sub.to_owned(),
        aud: aud.into(),
        exp: jsonwebtoken::get_current_timestamp() + 600,
        iss: None,
        nbf: None,
        role: admin.then(|| "admin".to_owned()),
    };
    encode(
        &header,
        &claims,
        &EncodingKey::from_rsa_pem(pem.as_bytes()).unwrap(),
    )
    .unwrap()
}

/// The authenticator, and the database file it keeps its API keys in (dropped with it).
async fn authenticator(url: &str) -> (Authenticator, TestDb) {
    let db = sqlite_db().await;
    let store = Store::connect(&db.url).await.unwrap();
    let auth = Authenticator::new(
        store,
        JwtConfig::hs256(b"hs-secret".to_vec(), "referral-mcp", None),
    )
    .with_jwks(Jwks::new(url, Duration::ZERO).unwrap());
    (auth, db)
}

fn bearer(t: &str) -> Credentials {
    Credentials::Bearer(t.to_owned())
}

#[tokio::test]
async fn rs256_tokens_verify_with_cached_jwks_keys_and_rotation_refetches_once() {
    let (p, url) = provider().await;
    let (auth, _db) = authenticator(&url).await;

    let admin = auth
        .authenticate(&bearer(&rs256(K1, "k1", "ops", true, "referral-mcp")))
        .await
        .expect("k1 token verifies");
    assert_eq!(admin.account.as_str(), "ops");
    assert_eq!(admin.via, Via::Jwt { admin: true });
    let user = auth
        .authenticate(&bearer(&rs256(K1, "k1", "alice", false, "referral-mcp")))
        .await
        .unwrap();
    assert_eq!(user.via, Via::Jwt { admin: false });
    assert_eq!(p.hits.load(Ordering::SeqCst), 1, "keys are cached");

    // The provider rotates in k2: the first token naming k2 triggers one refetch.
    *p.keys.lock().unwrap() = serde_json::from_str(JWKS).unwrap();
    auth.authenticate(&bearer(&rs256(K2, "k2", "bob", false, "referral-mcp")))
        .await
        .expect("k2 token verifies after a refetch");
    assert_eq!(p.hits.load(Ordering::SeqCst), 2);
    auth.authenticate(&bearer(&rs256(K2, "k2", "bob", false, "referral-mcp")))
        .await
        .unwrap();
    assert_eq!(p.hits.load(Ordering::SeqCst), 2, "k2 now cached");
}

#[tokio::test]
async fn rs256_tokens_with_a_wrong_key_kid_or_audience_are_refused() {
    let (_p, url) = provider().await;
    let (auth, _db) = authenticator(&url).await;
    // signed by k2, claims to be k1
    let e = auth
        .authenticate(&bearer(&rs256(K2, "k1", "ops", true, "referral-mcp")))
        .await
        .unwrap_err();
    assert_eq!(e.code(), "unauthenticated");
    assert!(e.to_string().contains("signature"), "{e}");
    // a kid the provider never published
    let e = auth
        .authenticate(&bearer(&rs256(K1, "nope", "ops", true, "referral-mcp")))
        .await
        .unwrap_err();
    assert!(e.to_string().contains("kid"), "{e}");
    // another audience
    let e = auth
        .authenticate(&bearer(&rs256(K1, "k1", "ops", true, "someone-else")))
        .await
        .unwrap_err();
    assert!(e.to_string().contains("audience"), "{e}");
    // no kid at all
    let mut header = Header::new(Algorithm::RS256);
    header.kid = None;
    let claims = json!({"sub": "ops", "aud": "referral-mcp", "exp": jsonwebtoken::get_current_timestamp() + 60});
    let t = encode(
        &header,
        &claims,
        &EncodingKey::from_rsa_pem(K1.as_bytes()).unwrap(),
    )
    .unwrap();
    assert!(auth.authenticate(&bearer(&t)).await.is_err());
}

#[tokio::test]
async fn hs256_still_works_beside_jwks_and_alg_none_is_refused() {
    let (_p, url) = provider().await;
    let (auth, _db) = authenticator(&url).await;
    let t = auth.jwt().mint(&account("ops"), false, 60).unwrap();
    assert_eq!(
        auth.authenticate(&bearer(&t))
            .await
            .unwrap()
            .account
            .as_str(),
        "ops"
    );
    // alg none: header {"alg":"none"}, no signature
    use base64::Engine;
    let enc = base64::engine::general_purpose::URL_SAFE_NO_PAD;
    let none = format!(
        "{}.{}.",
        enc.encode(r#"{"alg":"none","typ":"JWT"}"#),
        enc.encode(format!(
            r#"{{"sub":"ops","aud":"referral-mcp","exp":{},"role":"admin"}}"#,
            jsonwebtoken::get_current_timestamp() + 60
        ))
    );
    assert!(auth.authenticate(&bearer(&none)).await.is_err());
}
