//! Typed configuration, read once at start from the environment.
//!
//! Every name operators rely on is here (DESIGN.md, Configuration). A bad or
//! missing value is a `ConfigError` naming the variable, which the binaries
//! print as one line before exiting — never a panic.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::PathBuf;

use base64::Engine;
use base64::engine::general_purpose::STANDARD;

use crate::secrets::{
    CARRIER_SECRET_ARN, DATA_SECRET_ARN, KeySource, Keys, SecretArns, TOKEN_SECRET_ARN, secret_arn,
};
#[cfg(feature = "local")]
use crate::telnyx::simulator::{Latency, SimulatorSettings};

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("configuration error: {var} {problem}")]
pub struct ConfigError {
    pub var: &'static str,
    pub problem: String,
}

impl ConfigError {
    pub fn new(var: &'static str, problem: impl Into<String>) -> Self {
        Self {
            var,
            problem: problem.into(),
        }
    }
}

fn bad(var: &'static str, problem: impl Into<String>) -> ConfigError {
    ConfigError::new(var, problem)
}

/// A secret that never prints.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(Vec<u8>);

impl Secret {
    pub fn new(bytes: Vec<u8>) -> Self {
        Self(bytes)
    }
    pub fn expose(&self) -> &[u8] {
        &self.0
    }
}

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Secret(..)")
    }
}

/// Where the AWS resources are; all set together by template.yaml.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AwsResources {
    pub table_name: String,
    pub fanout_queue_url: String,
    pub send_queue_url: String,
    /// Inbound MMS waiting to be copied into the bucket.
    pub media_queue_url: String,
    pub media_bucket: String,
    pub event_bus_name: String,
}

/// Which adapters the process uses.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Backend {
    Aws(AwsResources),
    /// The embedded store in the data folder.
    Embedded,
}

/// An allowed browser origin: exact, or any port of a scheme and host (`http://localhost:*`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OriginPattern {
    scheme_host: String,
    port: Option<String>,
    any_port: bool,
}

impl OriginPattern {
    pub fn parse(raw: &str) -> Result<Self, String> {
        let raw = raw.trim().trim_end_matches('/');
        let (scheme, rest) = raw
            .split_once("://")
            .ok_or_else(|| format!("{raw:?} has no scheme"))?;
        if !matches!(scheme, "http" | "https") {
            return Err(format!("{raw:?} is not http or https"));
        }
        if rest.is_empty() || rest.contains(['/', '?', '#', '@']) {
            return Err(format!("{raw:?} is not a bare origin"));
        }
        let (host, port) = match rest.rsplit_once(':') {
            Some((host, "*")) => (host, Some("*")),
            Some((host, port)) if port.parse::<u16>().is_ok() => (host, Some(port)),
            Some(_) => return Err(format!("{raw:?} has a bad port")),
            None => (rest, None),
        };
        if host.is_empty() || host.contains('*') {
            return Err(format!("{raw:?} has a bad host"));
        }
        Ok(Self {
            scheme_host: format!("{scheme}://{}", host.to_ascii_lowercase()),
            port: port.filter(|p| *p != "*").map(str::to_owned),
            any_port: port == Some("*"),
        })
    }

    /// Whether a browser's `Origin` header is allowed by this pattern.
    pub fn matches(&self, origin: &str) -> bool {
        match Self::parse(origin) {
            Ok(o) if !o.any_port => {
                o.scheme_host == self.scheme_host && (self.any_port || o.port == self.port)
            }
            _ => false,
        }
    }
}

#[derive(Debug, Clone)]
pub struct Config {
    pub addr: SocketAddr,
    pub data_dir: PathBuf,
    pub backend: Backend,
    pub aws_endpoint_url: Option<String>,
    /// The secret values: from the environment on the local stack, from
    /// Secrets Manager (the ARNs below) on Lambda.
    pub keys: Keys,
    /// The secrets a Lambda reads at init (`TOKEN_SECRET_ARN`, `DATA_SECRET_ARN`,
    /// `CARRIER_SECRET_ARN`); a secret's value is never in the environment.
    pub secret_arns: SecretArns,
    pub telnyx_base_url: Option<String>,
    pub telnyx_sim_signing_key: Option<Secret>,
    pub allowed_origins: Vec<OriginPattern>,
    /// Where Telnyx reaches this API (`KOINONIA_PUBLIC_URL`), for per-message
    /// webhook URLs; unset on AWS → the messaging profile's webhook is used.
    pub public_url: Option<String>,
    /// How the built-in Telnyx simulator behaves (`TELNYX_SIM_*`).
    #[cfg(feature = "local")]
    pub simulator: SimulatorSettings,
    /// Carrier requests one send-consumer invocation keeps in flight
    /// (`KOINONIA_SEND_CONCURRENCY`); the platform's cap is this times the
    /// consumer's `MaximumConcurrency`.
    pub send_concurrency: usize,
}

pub const DEFAULT_SEND_CONCURRENCY: usize = 100;

#[cfg(feature = "local")]
/// `TELNYX_SIM_MPS`, `TELNYX_SIM_LATENCY_MS` (`120` or `500-2000`),
/// `TELNYX_SIM_FAILURE_RATE`, `TELNYX_SIM_DELIVERY_FAILURE_RATE` (0–1),
/// `TELNYX_SIM_WEBHOOK_ATTEMPTS` (deliveries of one webhook, 1–10).
fn simulator_settings(
    get: &impl Fn(&str) -> Option<String>,
) -> Result<SimulatorSettings, ConfigError> {
    let rate = |var: &'static str| {
        get(var)
            .map(|r| {
                r.parse::<f64>()
                    .ok()
                    .filter(|r| (0.0..=1.0).contains(r))
                    .ok_or_else(|| bad(var, "must be a number from 0 to 1"))
            })
            .transpose()
    };
    Ok(SimulatorSettings {
        mps: get("TELNYX_SIM_MPS")
            .map(|m| {
                m.parse::<u32>()
                    .ok()
                    .filter(|m| *m > 0)
                    .ok_or_else(|| bad("TELNYX_SIM_MPS", "must be a whole number above 0"))
            })
            .transpose()?,
        latency: get("TELNYX_SIM_LATENCY_MS")
            .map(|l| {
                Latency::parse(&l).ok_or_else(|| {
                    bad(
                        "TELNYX_SIM_LATENCY_MS",
                        "must be milliseconds, such as 120 or 500-2000",
                    )
                })
            })
            .transpose()?,
        failure_rate: rate("TELNYX_SIM_FAILURE_RATE")?,
        delivery_failure_rate: rate("TELNYX_SIM_DELIVERY_FAILURE_RATE")?,
        webhook_attempts: get("TELNYX_SIM_WEBHOOK_ATTEMPTS")
            .map(|a| {
                a.parse::<u32>()
                    .ok()
                    .filter(|a| (1..=10).contains(a))
                    .ok_or_else(|| {
                        bad(
                            "TELNYX_SIM_WEBHOOK_ATTEMPTS",
                            "must be a whole number from 1 to 10",
                        )
                    })
            })
            .transpose()?,
    })
}

pub const DEFAULT_ADDR: &str = "127.0.0.1:3000";
pub const DEFAULT_DATA_DIR: &str = "./.koinonia";
pub const DEFAULT_ORIGINS: &str = "http://localhost:*,http://127.0.0.1:*";

const AWS_RESOURCE_VARS: [&str; 6] = [
    "TABLE_NAME",
    "FANOUT_QUEUE_URL",
    "SEND_QUEUE_URL",
    "MEDIA_QUEUE_URL",
    "MEDIA_BUCKET",
    "EVENT_BUS_NAME",
];

impl Config {
    /// Reads the process environment.
    pub fn from_env() -> Result<Self, ConfigError> {
        Self::from_vars(std::env::vars())
    }

    /// Reads the given variables (tests pass their own).
    pub fn from_vars(
        vars: impl IntoIterator<Item = (String, String)>,
    ) -> Result<Self, ConfigError> {
        let vars: HashMap<String, String> = vars
            .into_iter()
            .filter(|(_, v)| !v.trim().is_empty())
            .collect();
        let get = |name: &str| vars.get(name).map(|v| v.trim().to_owned());

        let addr = get("KOINONIA_ADDR")
            .unwrap_or_else(|| DEFAULT_ADDR.to_owned())
            .parse()
            .map_err(|_| bad("KOINONIA_ADDR", "must be an address such as 127.0.0.1:3000"))?;
        let data_dir =
            PathBuf::from(get("KOINONIA_DATA_DIR").unwrap_or_else(|| DEFAULT_DATA_DIR.to_owned()));

        let resources: Vec<Option<String>> = AWS_RESOURCE_VARS.iter().map(|v| get(v)).collect();
        let backend = if resources.iter().all(Option::is_none) {
            Backend::Embedded
        } else if let Some(missing) = AWS_RESOURCE_VARS
            .iter()
            .zip(&resources)
            .find(|(_, v)| v.is_none())
        {
            return Err(bad(
                missing.0,
                "is missing: the AWS resources (TABLE_NAME, FANOUT_QUEUE_URL, SEND_QUEUE_URL, MEDIA_QUEUE_URL, MEDIA_BUCKET, EVENT_BUS_NAME) are set together or not at all",
            ));
        } else {
            let mut r = resources.into_iter().flatten();
            let mut next = || r.next().unwrap_or_default();
            let resources = AwsResources {
                table_name: next(),
                fanout_queue_url: next(),
                send_queue_url: next(),
                media_queue_url: next(),
                media_bucket: next(),
                event_bus_name: next(),
            };
            check_url("FANOUT_QUEUE_URL", &resources.fanout_queue_url)?;
            check_url("SEND_QUEUE_URL", &resources.send_queue_url)?;
            check_url("MEDIA_QUEUE_URL", &resources.media_queue_url)?;
            Backend::Aws(resources)
        };

        let aws_endpoint_url = get("AWS_ENDPOINT_URL")
            .map(|u| check_url("AWS_ENDPOINT_URL", &u).map(|()| u))
            .transpose()?;
        let telnyx_base_url = get("TELNYX_BASE_URL")
            .map(|u| check_url("TELNYX_BASE_URL", &u).map(|()| u))
            .transpose()?;

        // On AWS the frontend's origins must be named: falling back to
        // localhost there would let no real page through, or — worse — one
        // on the machine of whoever runs a browser next to it.
        let origins = match (get("KOINONIA_ALLOWED_ORIGINS"), &backend) {
            (Some(o), _) => o,
            (None, Backend::Aws(_)) => String::new(),
            (None, Backend::Embedded) => DEFAULT_ORIGINS.to_owned(),
        };
        let allowed_origins = origins
            .split(',')
            .filter(|o| !o.trim().is_empty())
            .map(|o| {
                OriginPattern::parse(o)
                    .map_err(|why| bad("KOINONIA_ALLOWED_ORIGINS", format!("entry {why}")))
            })
            .collect::<Result<Vec<_>, _>>()?;
        if allowed_origins.is_empty() && matches!(backend, Backend::Aws(_)) {
            return Err(bad(
                "KOINONIA_ALLOWED_ORIGINS",
                "is required on AWS: the frontend's origins, comma-separated",
            ));
        }

        Ok(Self {
            addr,
            data_dir,
            backend,
            aws_endpoint_url,
            keys: Keys::read(&get, KeySource::Environment)?,
            secret_arns: SecretArns {
                tokens: secret_arn(&get, TOKEN_SECRET_ARN)?,
                data: secret_arn(&get, DATA_SECRET_ARN)?,
                carrier: secret_arn(&get, CARRIER_SECRET_ARN)?,
            },
            telnyx_base_url,
            telnyx_sim_signing_key: get("TELNYX_SIM_SIGNING_KEY")
                .map(|k| key32("TELNYX_SIM_SIGNING_KEY", &k).map(|k| Secret::new(k.to_vec())))
                .transpose()?,
            allowed_origins,
            #[cfg(feature = "local")]
            simulator: simulator_settings(&get)?,
            send_concurrency: get("KOINONIA_SEND_CONCURRENCY")
                .map(|c| {
                    c.parse::<usize>()
                        .ok()
                        .filter(|c| (1..=1_000).contains(c))
                        .ok_or_else(|| {
                            bad(
                                "KOINONIA_SEND_CONCURRENCY",
                                "must be a whole number from 1 to 1000",
                            )
                        })
                })
                .transpose()?
                .unwrap_or(DEFAULT_SEND_CONCURRENCY),
            public_url: get("KOINONIA_PUBLIC_URL")
                .map(|u| {
                    check_url("KOINONIA_PUBLIC_URL", &u)
                        .map(|()| u.trim_end_matches('/').to_owned())
                })
                .transpose()?,
        })
    }

    /// A local stack keeping its data in `dir` and listening on a free
    /// loopback port, with `vars` on top (tests and benches).
    pub fn local_in(dir: &std::path::Path, vars: &[(&str, &str)]) -> Result<Self, ConfigError> {
        let mut all = vec![
            ("KOINONIA_ADDR".to_owned(), "127.0.0.1:0".to_owned()),
            ("KOINONIA_DATA_DIR".to_owned(), dir.display().to_string()),
        ];
        all.extend(vars.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())));
        Self::from_vars(all)
    }

    /// The AWS resources, for a Lambda (which has no embedded store to fall back on).
    pub fn require_aws(&self) -> Result<&AwsResources, ConfigError> {
        match &self.backend {
            Backend::Aws(resources) => Ok(resources),
            Backend::Embedded => Err(bad(
                "TABLE_NAME",
                "is missing: a Lambda function needs its AWS resources",
            )),
        }
    }

    pub fn origin_allowed(&self, origin: &str) -> bool {
        self.allowed_origins.iter().any(|p| p.matches(origin))
    }
}

fn check_url(var: &'static str, raw: &str) -> Result<(), ConfigError> {
    match url::Url::parse(raw) {
        Ok(u) if matches!(u.scheme(), "http" | "https") && u.host().is_some() => Ok(()),
        _ => Err(bad(var, format!("must be an http(s) URL, not {raw:?}"))),
    }
}

fn decode(var: &'static str, raw: &str) -> Result<Vec<u8>, ConfigError> {
    STANDARD.decode(raw).map_err(|_| bad(var, "must be base64"))
}

fn key32(var: &'static str, raw: &str) -> Result<[u8; 32], ConfigError> {
    decode(var, raw)?
        .try_into()
        .map_err(|_| bad(var, "must be 32 bytes, base64-encoded"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn vars(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect()
    }

    #[test]
    fn nothing_set_means_the_embedded_local_stack() {
        let config = Config::from_vars(vars(&[])).unwrap();
        assert_eq!(config.addr.to_string(), "127.0.0.1:3000");
        assert_eq!(config.backend, Backend::Embedded);
        assert!(config.origin_allowed("http://localhost:5173"));
        assert!(config.origin_allowed("http://127.0.0.1:3000"));
        assert!(!config.origin_allowed("http://evil.example:5173"));
        assert!(!config.origin_allowed("https://localhost:5173"));
        assert!(config.keys.telnyx_api_key.is_none());
    }

    #[test]
    fn each_bad_variable_is_named() {
        let cases = [
            ("AWS_ENDPOINT_URL", "not a url"),
            ("KOINONIA_ADDR", "localhost"),
            ("TELNYX_PUBLIC_KEY", "!!!"),
            ("TELNYX_PUBLIC_KEY", "c2hvcnQ="),
            ("DATA_KEY", "c2hvcnQ="),
            ("JWT_SECRET", "short"),
            ("TELNYX_BASE_URL", "ftp://x"),
            ("KOINONIA_ALLOWED_ORIGINS", "*"),
            ("TOKEN_SECRET_ARN", "koinonia/prod/tokens"),
            ("DATA_SECRET_ARN", "arn:aws:s3:::bucket"),
            ("TABLE_NAME", "koinonia"),
        ];
        for (var, value) in cases {
            let err = Config::from_vars(vars(&[(var, value)])).unwrap_err();
            let expected = if var == "TABLE_NAME" {
                "FANOUT_QUEUE_URL"
            } else {
                var
            };
            assert_eq!(err.var, expected, "{var}={value}: {err}");
            assert!(err.to_string().contains(expected));
        }
    }

    #[test]
    fn all_aws_resources_make_the_aws_backend() {
        let config = Config::from_vars(vars(&[
            ("TABLE_NAME", "koinonia"),
            (
                "FANOUT_QUEUE_URL",
                "https://sqs.us-east-1.amazonaws.com/1/fanout",
            ),
            (
                "SEND_QUEUE_URL",
                "https://sqs.us-east-1.amazonaws.com/1/send",
            ),
            (
                "MEDIA_QUEUE_URL",
                "https://sqs.us-east-1.amazonaws.com/1/media",
            ),
            ("MEDIA_BUCKET", "koinonia-media"),
            ("EVENT_BUS_NAME", "koinonia"),
            (
                "KOINONIA_ALLOWED_ORIGINS",
                "https://app.koinonia.example, https://admin.koinonia.example:8443",
            ),
        ]))
        .unwrap();
        assert_eq!(config.require_aws().unwrap().table_name, "koinonia");
        assert!(config.origin_allowed("https://app.koinonia.example"));
        assert!(config.origin_allowed("https://admin.koinonia.example:8443"));
        assert!(!config.origin_allowed("https://admin.koinonia.example"));
        assert!(!config.origin_allowed("https://app.koinonia.example.evil.com"));
    }

    #[test]
    fn on_aws_the_allowed_origins_are_required() {
        let aws = [
            ("TABLE_NAME", "koinonia"),
            (
                "FANOUT_QUEUE_URL",
                "https://sqs.us-east-1.amazonaws.com/1/f",
            ),
            ("SEND_QUEUE_URL", "https://sqs.us-east-1.amazonaws.com/1/s"),
            ("MEDIA_QUEUE_URL", "https://sqs.us-east-1.amazonaws.com/1/m"),
            ("MEDIA_BUCKET", "koinonia-media"),
            ("EVENT_BUS_NAME", "koinonia"),
        ];
        for origins in [None, Some(""), Some(" , ")] {
            let mut all = aws.to_vec();
            all.extend(origins.map(|o| ("KOINONIA_ALLOWED_ORIGINS", o)));
            let err = Config::from_vars(vars(&all)).unwrap_err();
            assert_eq!(err.var, "KOINONIA_ALLOWED_ORIGINS", "{origins:?}: {err}");
        }
        // The local stack keeps its localhost default.
        assert!(
            Config::from_vars(vars(&[]))
                .unwrap()
                .origin_allowed("http://localhost:5173")
        );
    }

    #[test]
    fn secrets_never_print() {
        let config = Config::from_vars(vars(&[(
            "JWT_SECRET",
            "0123456789abcdef0123456789abcdef-hunter2",
        )]))
        .unwrap();
        assert!(!format!("{config:?}").contains("hunter2"));
    }
}
