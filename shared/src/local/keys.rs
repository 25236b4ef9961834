//! Secrets the local stack generates on first start and keeps in the data
//! folder, so tokens, encrypted phones and presigned URLs stay valid across
//! restarts. Environment variables, when set, win.

use std::path::Path;

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use rand::RngCore;
use serde::{Deserialize, Serialize};

use crate::config::{Config, Secret};

#[derive(Serialize, Deserialize)]
struct KeyFile {
    jwt_secret: String,
    data_key: String,
    phone_hash_key: String,
    telnyx_sim_signing_key: String,
    blob_signing_key: String,
}

/// The generated keys, after the environment's.
pub struct LocalKeys {
    pub blob_signing_key: Vec<u8>,
}

fn fresh() -> String {
    let mut bytes = [0u8; 32];
    rand::rng().fill_bytes(&mut bytes);
    STANDARD.encode(bytes)
}

fn decode(value: &str) -> std::io::Result<Vec<u8>> {
    STANDARD.decode(value).map_err(|e| {
        std::io::Error::new(std::io::ErrorKind::InvalidData, format!("keys.json: {e}"))
    })
}

/// Loads `keys.json` (creating it, readable by the owner only) and fills
/// every secret the environment left unset.
pub fn load_or_create(dir: &Path, config: &mut Config) -> std::io::Result<LocalKeys> {
    let path = dir.join("keys.json");
    let keys: KeyFile = match std::fs::read(&path) {
        Ok(bytes) => serde_json::from_slice(&bytes)
            .map_err(|e| std::io::Error::new(std::io::ErrorKind::InvalidData, e))?,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            let keys = KeyFile {
                jwt_secret: fresh(),
                data_key: fresh(),
                phone_hash_key: fresh(),
                telnyx_sim_signing_key: fresh(),
                blob_signing_key: fresh(),
            };
            std::fs::create_dir_all(dir)?;
            let partial = dir.join("keys.json.partial");
            write_private(&partial, &serde_json::to_vec_pretty(&keys)?)?;
            std::fs::rename(&partial, &path)?;
            keys
        }
        Err(e) => return Err(e),
    };
    let secret = |value: &str| decode(value).map(Secret::new);
    if config.keys.jwt_secret.is_none() {
        config.keys.jwt_secret = Some(secret(&keys.jwt_secret)?);
    }
    if config.keys.data_key.is_none() {
        config.keys.data_key = Some(secret(&keys.data_key)?);
    }
    if config.keys.phone_hash_key.is_none() {
        config.keys.phone_hash_key = Some(secret(&keys.phone_hash_key)?);
    }
    if config.telnyx_sim_signing_key.is_none() {
        config.telnyx_sim_signing_key = Some(secret(&keys.telnyx_sim_signing_key)?);
    }
    Ok(LocalKeys {
        blob_signing_key: decode(&keys.blob_signing_key)?,
    })
}

/// Writes `bytes` to a new file only its owner may read: created 0600, so
/// the keys are never readable by others, not even for a moment (a file
/// written then chmod-ed is world-readable in between). A partial file left
/// by a crash is replaced.
fn write_private(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    use std::io::Write;
    match std::fs::remove_file(path) {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => return Err(e),
    }
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    let mut file = options.open(path)?;
    file.write_all(bytes)?;
    file.sync_all()
}

#[cfg(all(test, unix))]
mod private_file_tests {
    use std::os::unix::fs::PermissionsExt;

    use super::write_private;

    #[test]
    fn the_keys_file_is_created_readable_by_its_owner_alone() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("keys.json.partial");
        // A world-readable partial file left by a crash is replaced, not reused.
        std::fs::write(&path, b"stale").unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).unwrap();
        write_private(&path, b"{}").unwrap();
        let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
        assert_eq!(std::fs::read(&path).unwrap(), b"{}");
    }
}
