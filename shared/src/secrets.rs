//! The secret values a function may need, split by use into three secrets:
//! tokens (`JWT_SECRET`), data keys (`DATA_KEY`, `PHONE_HASH_KEY`) and the
//! carrier (`TELNYX_API_KEY`, `TELNYX_PUBLIC_KEY`).
//!
//! The local stack reads them from the environment (or generates them). A
//! Lambda never does: its environment names each secret by ARN and the
//! function reads the secret's JSON once per cold start
//! (`adapters::aws::secrets`). Both go through [`Keys::read`], so a value is
//! checked the same way wherever it comes from, and a bad one fails the
//! start with an error naming it.

use base64::Engine;
use base64::engine::general_purpose::STANDARD;

use crate::config::{ConfigError, Secret};

pub const TOKEN_SECRET_ARN: &str = "TOKEN_SECRET_ARN";
pub const DATA_SECRET_ARN: &str = "DATA_SECRET_ARN";
pub const CARRIER_SECRET_ARN: &str = "CARRIER_SECRET_ARN";

/// The variables that hold a secret value on the local stack, and never on Lambda.
pub const SECRET_VALUE_VARS: [&str; 5] = [
    "JWT_SECRET",
    "DATA_KEY",
    "PHONE_HASH_KEY",
    "TELNYX_API_KEY",
    "TELNYX_PUBLIC_KEY",
];

/// The three secrets by use, each granted only to the functions that use it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SecretUse {
    Tokens,
    Data,
    Carrier,
}

impl SecretUse {
    pub const ALL: [SecretUse; 3] = [SecretUse::Tokens, SecretUse::Data, SecretUse::Carrier];

    /// The environment variable that holds the secret's ARN.
    pub fn arn_var(self) -> &'static str {
        match self {
            SecretUse::Tokens => TOKEN_SECRET_ARN,
            SecretUse::Data => DATA_SECRET_ARN,
            SecretUse::Carrier => CARRIER_SECRET_ARN,
        }
    }

    /// The JSON fields the secret holds.
    pub fn fields(self) -> &'static [&'static str] {
        match self {
            SecretUse::Tokens => &["JWT_SECRET"],
            SecretUse::Data => &["DATA_KEY", "PHONE_HASH_KEY"],
            SecretUse::Carrier => &["TELNYX_API_KEY", "TELNYX_PUBLIC_KEY"],
        }
    }
}

/// Where a value came from, for the error that names it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeySource {
    Environment,
    /// A version of a secret: its staging label, when not AWSCURRENT.
    Secret {
        secret: SecretUse,
        stage: Option<&'static str>,
    },
}

/// ARNs of the secrets a Lambda reads at init.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SecretArns {
    pub tokens: Option<String>,
    pub data: Option<String>,
    pub carrier: Option<String>,
}

impl SecretArns {
    pub fn get(&self, secret: SecretUse) -> Option<&str> {
        match secret {
            SecretUse::Tokens => self.tokens.as_deref(),
            SecretUse::Data => self.data.as_deref(),
            SecretUse::Carrier => self.carrier.as_deref(),
        }
        .map(str::trim)
    }
}

/// Reads an ARN variable; anything but a Secrets Manager secret ARN is refused.
pub fn secret_arn(
    get: &impl Fn(&str) -> Option<String>,
    var: &'static str,
) -> Result<Option<String>, ConfigError> {
    let Some(arn) = get(var) else {
        return Ok(None);
    };
    let parts: Vec<&str> = arn.splitn(7, ':').collect();
    match parts.as_slice() {
        [
            "arn",
            partition,
            "secretsmanager",
            region,
            account,
            "secret",
            name,
        ] if partition.starts_with("aws")
            && !region.is_empty()
            && account.len() == 12
            && account.bytes().all(|b| b.is_ascii_digit())
            && !name.is_empty() =>
        {
            Ok(Some(arn))
        }
        _ => Err(ConfigError::new(
            var,
            format!("must be a Secrets Manager secret ARN, not {arn:?}"),
        )),
    }
}

/// Every secret value, each checked for its form.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Keys {
    /// `None` → the built-in Telnyx simulator (local stack only).
    pub telnyx_api_key: Option<Secret>,
    pub telnyx_public_key: Option<[u8; 32]>,
    pub jwt_secret: Option<Secret>,
    /// Other versions of the JWT secret that still verify tokens (never
    /// sign): the one being rotated in (AWSPENDING), so warm functions accept
    /// tokens its new holders sign, and the one rotated out (AWSPREVIOUS),
    /// whose sessions live on until they expire. A rotation logs no one out.
    pub jwt_accepted: Vec<Secret>,
    pub data_key: Option<Secret>,
    pub phone_hash_key: Option<Secret>,
}

impl Keys {
    /// Reads the values `get` has, from the environment or a secret's fields.
    pub fn read(
        get: &impl Fn(&str) -> Option<String>,
        source: KeySource,
    ) -> Result<Self, ConfigError> {
        let bad = |var: &'static str, problem: &str| {
            let problem = match source {
                KeySource::Environment => problem.to_owned(),
                KeySource::Secret { secret, stage } => format!(
                    "(in the {}secret {} names) {problem}",
                    stage
                        .map(|s| format!("{s} version of the "))
                        .unwrap_or_default(),
                    secret.arn_var()
                ),
            };
            ConfigError::new(var, problem)
        };
        let key32 = |var: &'static str, raw: &str| -> Result<[u8; 32], ConfigError> {
            STANDARD
                .decode(raw)
                .ok()
                .and_then(|k| k.try_into().ok())
                .ok_or_else(|| bad(var, "must be 32 bytes, base64-encoded"))
        };
        let at_least_32 = |var: &'static str, bytes: Vec<u8>| {
            if bytes.len() < 32 {
                Err(bad(var, "must be at least 32 bytes"))
            } else {
                Ok(Secret::new(bytes))
            }
        };
        Ok(Self {
            telnyx_api_key: get("TELNYX_API_KEY")
                .map(|k| {
                    if k.chars().any(char::is_whitespace) || !k.is_ascii() {
                        Err(bad("TELNYX_API_KEY", "must be one printable word"))
                    } else {
                        Ok(Secret::new(k.into_bytes()))
                    }
                })
                .transpose()?,
            telnyx_public_key: get("TELNYX_PUBLIC_KEY")
                .map(|k| key32("TELNYX_PUBLIC_KEY", &k))
                .transpose()?,
            jwt_secret: get("JWT_SECRET")
                .map(|s| at_least_32("JWT_SECRET", s.into_bytes()))
                .transpose()?,
            jwt_accepted: Vec::new(),
            data_key: get("DATA_KEY")
                .map(|k| key32("DATA_KEY", &k).map(|k| Secret::new(k.to_vec())))
                .transpose()?,
            phone_hash_key: get("PHONE_HASH_KEY")
                .map(|k| {
                    STANDARD
                        .decode(&k)
                        .map_err(|_| bad("PHONE_HASH_KEY", "must be base64"))
                        .and_then(|b| at_least_32("PHONE_HASH_KEY", b))
                })
                .transpose()?,
        })
    }

    /// Reads the fields of one secret's JSON, and requires every field it holds.
    pub fn from_secret(
        secret: SecretUse,
        stage: Option<&'static str>,
        fields: &serde_json::Map<String, serde_json::Value>,
    ) -> Result<Self, ConfigError> {
        let source = KeySource::Secret { secret, stage };
        for field in secret.fields() {
            let present = fields
                .get(*field)
                .and_then(serde_json::Value::as_str)
                .is_some_and(|v| !v.trim().is_empty());
            if !present {
                let var = SECRET_VALUE_VARS
                    .into_iter()
                    .find(|v| v == field)
                    .unwrap_or(secret.arn_var());
                return Err(ConfigError::new(
                    var,
                    format!(
                        "is missing from the secret {} names (a JSON object with {})",
                        secret.arn_var(),
                        secret.fields().join(", ")
                    ),
                ));
            }
        }
        let get = |name: &str| {
            secret
                .fields()
                .contains(&name)
                .then(|| fields.get(name).and_then(serde_json::Value::as_str))
                .flatten()
                .map(|v| v.trim().to_owned())
        };
        Self::read(&get, source)
    }

    /// Takes the values of `other` that are set.
    pub fn merge(&mut self, other: Keys) {
        let Keys {
            telnyx_api_key,
            telnyx_public_key,
            jwt_secret,
            jwt_accepted,
            data_key,
            phone_hash_key,
        } = other;
        self.telnyx_api_key = telnyx_api_key.or(self.telnyx_api_key.take());
        self.telnyx_public_key = telnyx_public_key.or(self.telnyx_public_key.take());
        self.jwt_secret = jwt_secret.or(self.jwt_secret.take());
        if !jwt_accepted.is_empty() {
            self.jwt_accepted = jwt_accepted;
        }
        self.data_key = data_key.or(self.data_key.take());
        self.phone_hash_key = phone_hash_key.or(self.phone_hash_key.take());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn json(v: serde_json::Value) -> serde_json::Map<String, serde_json::Value> {
        v.as_object().unwrap().clone()
    }

    #[test]
    fn a_secret_missing_a_field_names_the_field_and_the_secret() {
        let err = Keys::from_secret(
            SecretUse::Data,
            None,
            &json(serde_json::json!({"DATA_KEY": STANDARD.encode([7u8; 32])})),
        )
        .unwrap_err();
        assert_eq!(err.var, "PHONE_HASH_KEY");
        assert!(err.to_string().contains("DATA_SECRET_ARN"), "{err}");
    }

    #[test]
    fn a_bad_value_in_a_secret_names_the_value_and_the_secret() {
        let err = Keys::from_secret(
            SecretUse::Data,
            None,
            &json(serde_json::json!({"DATA_KEY": "c2hvcnQ=", "PHONE_HASH_KEY": STANDARD.encode([1u8; 32])})),
        )
        .unwrap_err();
        assert_eq!(err.var, "DATA_KEY");
        assert!(err.to_string().contains("DATA_SECRET_ARN"), "{err}");
        assert!(err.to_string().contains("32 bytes"), "{err}");
    }

    #[test]
    fn a_secret_gives_only_its_own_fields() {
        let keys = Keys::from_secret(
            SecretUse::Tokens,
            None,
            &json(serde_json::json!({
                "JWT_SECRET": "0123456789abcdef0123456789abcdef",
                "DATA_KEY": STANDARD.encode([7u8; 32]),
            })),
        )
        .unwrap();
        assert!(keys.jwt_secret.is_some());
        assert!(keys.data_key.is_none());
    }

    #[test]
    fn only_secret_arns_are_taken() {
        let get = |v: &str| (v == TOKEN_SECRET_ARN).then(|| "koinonia/prod".to_owned());
        assert_eq!(
            secret_arn(&get, TOKEN_SECRET_ARN).unwrap_err().var,
            TOKEN_SECRET_ARN
        );
        let get = |_: &str| {
            Some(
                "arn:aws:secretsmanager:us-east-1:123456789012:secret:koinonia/tokens-AbCdEf"
                    .into(),
            )
        };
        assert!(secret_arn(&get, TOKEN_SECRET_ARN).unwrap().is_some());
    }
}
