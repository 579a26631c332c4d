//! API keys and tokens against a real database — on SQLite and PostgreSQL.

mod common;

use common::*;
use referral_mcp::auth::{Authenticator, Credentials, JwtConfig};
use referral_mcp::core::access::{Operation, Scope, ScopeSet, authorize};

#[tokio::test]
async fn a_key_works_until_revoked_and_carries_only_its_scopes() {
    for db in databases().await {
        let t = app(&db).await;
        let auth = Authenticator::new(
            t.store.clone(),
            JwtConfig::hs256(b"s".to_vec(), "referral-mcp", None),
        );
        let key = auth
            .keys()
            .create(
                "support bot",
                &account("ops"),
                [Scope::Read].into_iter().collect(),
                START,
            )
            .await
            .unwrap();
        assert!(key.key.starts_with("rk_"));
        let p = auth
            .authenticate(&Credentials::ApiKey(key.key.clone()))
            .await
            .unwrap();
        assert_eq!(p.account.as_str(), "ops");
        assert_eq!(p.scopes, [Scope::Read].into_iter().collect::<ScopeSet>());
        assert!(authorize(Some(&p), Operation::ListReferrals).is_ok());
        assert_eq!(
            authorize(Some(&p), Operation::ApproveReferral)
                .unwrap_err()
                .code(),
            "forbidden"
        );
        // a key also works as a bearer token
        assert!(
            auth.authenticate(&Credentials::Bearer(key.key.clone()))
                .await
                .is_ok()
        );

        // the secret is not stored
        let row = t
            .store
            .api_key_by_prefix(&key.prefix)
            .await
            .unwrap()
            .unwrap();
        assert!(!row.secret_hash.contains(&key.key[14..]), "[{}]", db.label);

        // a wrong secret with a right prefix is refused
        let forged = format!("rk_{}_{}", key.prefix, "A".repeat(32));
        assert_eq!(
            auth.authenticate(&Credentials::ApiKey(forged))
                .await
                .unwrap_err()
                .code(),
            "unauthenticated"
        );
        for junk in ["", "rk_", "rk_short_x", "not-a-key"] {
            assert!(
                auth.authenticate(&Credentials::ApiKey(junk.into()))
                    .await
                    .is_err(),
                "{junk}"
            );
        }

        assert!(auth.keys().revoke(&key.prefix, START + 1).await.unwrap());
        let err = auth
            .authenticate(&Credentials::ApiKey(key.key.clone()))
            .await
            .unwrap_err();
        assert_eq!(err.code(), "unauthenticated", "[{}]", db.label);
        assert!(
            !auth.keys().revoke(&key.prefix, START + 2).await.unwrap(),
            "revoking twice"
        );
    }
}
