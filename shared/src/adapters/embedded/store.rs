//! The SQLite file behind every embedded adapter.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use rusqlite::Connection;

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("cannot create the data folder {path}")]
    CreateDir {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("cannot open the embedded store {path}")]
    Open {
        path: PathBuf,
        #[source]
        source: rusqlite::Error,
    },
    #[error("embedded store query failed")]
    Sqlite(#[from] rusqlite::Error),
    #[error("embedded store worker stopped")]
    Worker(#[from] tokio::task::JoinError),
    #[error("the store is closed")]
    Closed,
}

/// One SQLite connection in WAL mode, shared by the embedded adapters.
///
/// Every call runs on Tokio's blocking pool. A single connection serialises
/// writers, which is what gives conditional writes and transactions their
/// all-or-nothing meaning here; the local stack's load is far below what one
/// SQLite writer handles.
#[derive(Clone)]
pub struct Store {
    conn: Arc<Mutex<Connection>>,
    /// Calls waiting for the connection wait here, as tasks, rather than as
    /// blocking threads: under load Tokio would otherwise start hundreds of
    /// threads that all queue on the one mutex (and each keeps its own heap).
    gate: Arc<tokio::sync::Semaphore>,
    dir: PathBuf,
}

/// Blocking threads that may hold or wait for the connection at once.
const THREADS: usize = 2;

const SCHEMA: &str = "
PRAGMA journal_mode = WAL;
PRAGMA synchronous = NORMAL;
PRAGMA busy_timeout = 5000;
CREATE TABLE IF NOT EXISTS items (
    pk TEXT NOT NULL,
    sk TEXT NOT NULL,
    body TEXT NOT NULL,
    gsi1pk TEXT, gsi1sk TEXT,
    gsi2pk TEXT, gsi2sk TEXT,
    ttl INTEGER,
    PRIMARY KEY (pk, sk)
) WITHOUT ROWID;
-- The GSI indexes carry ttl too, so a keys-only query (skipping to page 40)
-- is answered from the index alone, without visiting each row.
DROP INDEX IF EXISTS items_gsi1;
DROP INDEX IF EXISTS items_gsi2;
CREATE INDEX IF NOT EXISTS items_gsi1_keys ON items (gsi1pk, gsi1sk, pk, sk, ttl) WHERE gsi1pk IS NOT NULL;
CREATE INDEX IF NOT EXISTS items_gsi2_keys ON items (gsi2pk, gsi2sk, pk, sk, ttl) WHERE gsi2pk IS NOT NULL;
CREATE INDEX IF NOT EXISTS items_ttl ON items (ttl) WHERE ttl IS NOT NULL;
CREATE TABLE IF NOT EXISTS queue_messages (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    id TEXT NOT NULL UNIQUE,
    queue TEXT NOT NULL,
    body TEXT NOT NULL,
    visible_at_ms INTEGER NOT NULL,
    receive_count INTEGER NOT NULL DEFAULT 0,
    receipt TEXT,
    sent_at_ms INTEGER NOT NULL
);
CREATE INDEX IF NOT EXISTS queue_ready ON queue_messages (queue, visible_at_ms);
CREATE TABLE IF NOT EXISTS blobs (
    key TEXT PRIMARY KEY,
    content_type TEXT NOT NULL,
    size INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS events (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    id TEXT NOT NULL,
    detail_type TEXT NOT NULL,
    detail TEXT NOT NULL,
    published_at TEXT NOT NULL
);
";

impl Store {
    /// Opens (creating if needed) the store in `dir`.
    pub fn open(dir: &Path) -> Result<Self, StoreError> {
        std::fs::create_dir_all(dir).map_err(|source| StoreError::CreateDir {
            path: dir.to_owned(),
            source,
        })?;
        let path = dir.join("koinonia.sqlite3");
        let conn = Connection::open(&path)
            .and_then(|conn| conn.execute_batch(SCHEMA).map(|()| conn))
            .map_err(|source| StoreError::Open { path, source })?;
        Ok(Self {
            conn: Arc::new(Mutex::new(conn)),
            gate: Arc::new(tokio::sync::Semaphore::new(THREADS)),
            dir: dir.to_owned(),
        })
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Runs `work` with the connection on the blocking pool.
    pub(crate) async fn run<T, E>(
        &self,
        work: impl FnOnce(&mut Connection) -> Result<T, E> + Send + 'static,
    ) -> Result<T, E>
    where
        T: Send + 'static,
        E: From<StoreError> + Send + 'static,
    {
        let conn = Arc::clone(&self.conn);
        let _turn = self
            .gate
            .acquire()
            .await
            .map_err(|_| E::from(StoreError::Closed))?;
        tokio::task::spawn_blocking(move || {
            let mut conn = conn.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
            work(&mut conn)
        })
        .await
        .map_err(|e| E::from(StoreError::Worker(e)))?
    }
}

pub(crate) fn now_ms() -> i64 {
    chrono::Utc::now().timestamp_millis()
}
