//! The secrets a Lambda reads at init, on the emulator's Secrets Manager:
//! every rotation stage of the token secret is accepted, a bad or missing
//! secret fails naming it, and a warm function picks up a rotation.

use std::time::Duration;

use aws_sdk_secretsmanager::Client;
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use chrono::Utc;
use serde_json::json;
use shared::adapters::aws::secrets::{TokenRefresh, resolve};
use shared::auth::tokens::TokenKind;
use shared::auth::{Role, TokenSigner};
use shared::config::Config;
use shared::domain::{AdminId, ChurchId};

use crate::support::{aws_clients, unique};

fn jwt(n: u8) -> String {
    format!("jwt-secret-version-{n}-{}", "x".repeat(32))
}

async fn secret(client: &Client, value: serde_json::Value) -> String {
    client
        .create_secret()
        .name(unique("koinonia/test"))
        .secret_string(value.to_string())
        .send()
        .await
        .unwrap()
        .arn
        .unwrap()
}

async fn put(client: &Client, arn: &str, value: serde_json::Value, stage: Option<&str>) -> String {
    let mut put = client
        .put_secret_value()
        .secret_id(arn)
        .secret_string(value.to_string());
    if let Some(stage) = stage {
        put = put.version_stages(stage);
    }
    put.send().await.unwrap().version_id.unwrap()
}

fn config(vars: &[(&str, &str)]) -> Config {
    Config::from_vars(vars.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))).unwrap()
}

fn token(secret: &str) -> String {
    TokenSigner::new(secret.as_bytes())
        .issue(
            TokenKind::Access,
            AdminId::generate(),
            ChurchId::generate(),
            Role::Primary,
            "s1",
            Utc::now(),
        )
        .unwrap()
        .0
}

fn signer_of(config: &Config) -> TokenSigner {
    let keys = &config.keys;
    TokenSigner::new(keys.jwt_secret.as_ref().unwrap().expose())
        .accepting(keys.jwt_accepted.iter().map(|s| s.expose()))
}

/// A config resolved from a token secret in three versions: 1 previous,
/// 2 current, 3 pending.
async fn config_of_a_rotating_token_secret() -> Config {
    let clients = aws_clients().await;
    let sm = &clients.secrets;
    let arn = secret(sm, json!({"JWT_SECRET": jwt(1)})).await;
    put(sm, &arn, json!({"JWT_SECRET": jwt(2)}), None).await; // 2 current, 1 previous
    put(sm, &arn, json!({"JWT_SECRET": jwt(3)}), Some("AWSPENDING")).await;
    let mut config = config(&[("TOKEN_SECRET_ARN", &arn)]);
    resolve(sm, &mut config).await.unwrap();
    config
}

#[tokio::test]
async fn tokens_of_the_current_pending_and_previous_versions_verify() {
    let config = config_of_a_rotating_token_secret().await;
    let signer = signer_of(&config);
    let now = Utc::now();
    for version in [1, 2, 3] {
        assert!(
            signer
                .verify(&token(&jwt(version)), TokenKind::Access, now)
                .is_ok(),
            "version {version}"
        );
    }
}

#[tokio::test]
async fn a_token_of_no_version_of_the_secret_is_refused() {
    let config = config_of_a_rotating_token_secret().await;
    let signer = signer_of(&config);
    let now = Utc::now();
    assert!(
        signer
            .verify(&token(&jwt(9)), TokenKind::Access, now)
            .is_err()
    );
}

#[tokio::test]
async fn new_tokens_are_signed_with_the_current_version_only() {
    let config = config_of_a_rotating_token_secret().await;
    assert_eq!(
        config.keys.jwt_secret.as_ref().unwrap().expose(),
        jwt(2).as_bytes()
    );
    let signer = signer_of(&config);
    let now = Utc::now();
    let new = signer
        .issue(
            TokenKind::Access,
            AdminId::generate(),
            ChurchId::generate(),
            Role::Primary,
            "s",
            now,
        )
        .unwrap()
        .0;
    assert!(
        TokenSigner::new(jwt(2).as_bytes())
            .verify(&new, TokenKind::Access, now)
            .is_ok()
    );
}

#[tokio::test]
async fn a_bad_unreadable_or_incomplete_secret_is_named() {
    let clients = aws_clients().await;
    let sm = &clients.secrets;
    let short = secret(
        sm,
        json!({"DATA_KEY": "c2hvcnQ=", "PHONE_HASH_KEY": STANDARD.encode([1u8; 32])}),
    )
    .await;
    let incomplete = secret(sm, json!({"TELNYX_API_KEY": "KEY-x"})).await;
    let not_json = secret(sm, json!("just a string")).await;
    let missing = short.replace("koinonia/test", "koinonia/none");
    let cases = [
        ("DATA_SECRET_ARN", short.as_str(), "DATA_KEY", "32 bytes"),
        (
            "CARRIER_SECRET_ARN",
            incomplete.as_str(),
            "TELNYX_PUBLIC_KEY",
            "CARRIER_SECRET_ARN",
        ),
        (
            "TOKEN_SECRET_ARN",
            not_json.as_str(),
            "TOKEN_SECRET_ARN",
            "JSON object",
        ),
        (
            "DATA_SECRET_ARN",
            missing.as_str(),
            "DATA_SECRET_ARN",
            "could not read",
        ),
    ];
    for (var, arn, named, says) in cases {
        let mut config = config(&[(var, arn)]);
        let err = resolve(sm, &mut config).await.unwrap_err();
        assert_eq!(err.var, named, "{var}: {err}");
        assert!(err.to_string().contains(says), "{var}: {err}");
    }
}

#[tokio::test]
async fn a_warm_function_picks_up_a_rotation() {
    let clients = aws_clients().await;
    let sm = &clients.secrets;
    let arn = secret(sm, json!({"JWT_SECRET": jwt(1)})).await;
    let refresh = TokenRefresh::new(sm.clone(), &arn).every(Duration::from_millis(50));
    assert!(refresh.due().await.is_none(), "just read at init");
    // Staged, then promoted: AWSCURRENT is 2 and AWSPREVIOUS is 1.
    let v2 = put(sm, &arn, json!({"JWT_SECRET": jwt(2)}), Some("AWSPENDING")).await;
    let current = sm
        .describe_secret()
        .secret_id(&arn)
        .send()
        .await
        .unwrap()
        .version_ids_to_stages
        .unwrap()
        .into_iter()
        .find(|(_, stages)| stages.iter().any(|s| s == "AWSCURRENT"))
        .unwrap()
        .0;
    sm.update_secret_version_stage()
        .secret_id(&arn)
        .version_stage("AWSCURRENT")
        .move_to_version_id(&v2)
        .remove_from_version_id(current)
        .send()
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_millis(60)).await;
    let keys = refresh.due().await.expect("due again").unwrap();
    assert_eq!(keys.jwt_secret.unwrap().expose(), jwt(2).as_bytes());
    assert!(
        keys.jwt_accepted
            .iter()
            .any(|s| s.expose() == jwt(1).as_bytes()),
        "the rotated-out version still verifies"
    );
}
