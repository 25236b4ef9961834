//! The SQLite file behind every embedded adapter.

use std::path::{Path, PathBuf};

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
    #[error("cannot start the embedded store's thread")]
    Thread(#[source] std::io::Error),
    #[error("the embedded store's thread has stopped")]
    Closed,
}

/// One SQLite connection in WAL mode, shared by the embedded adapters.
///
/// The connection lives on one dedicated thread and every call is sent to
/// it: a single connection serialises writers, which is what gives
/// conditional writes and transactions their all-or-nothing meaning here,
/// and callers wait as tasks — not as hundreds of blocking threads queued on
/// a mutex, each keeping its own heap (that cost 400 MB under the bench).
#[derive(Clone)]
pub struct Store {
    calls: std::sync::mpsc::Sender<Call>,
    dir: PathBuf,
}

type Call = Box<dyn FnOnce(&mut Connection) + Send>;

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
-- The table's change stream (DynamoDB Streams, NEW_AND_OLD_IMAGES): one row
-- per write that changed an item, in the same SQLite transaction as the write.
CREATE TABLE IF NOT EXISTS changes (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    shard INTEGER NOT NULL,
    kind TEXT NOT NULL,
    pk TEXT NOT NULL,
    sk TEXT NOT NULL,
    old TEXT,
    new TEXT,
    at INTEGER NOT NULL
);
CREATE INDEX IF NOT EXISTS changes_by_shard ON changes (shard, seq);
CREATE INDEX IF NOT EXISTS changes_by_age ON changes (at);
-- Where each local stream consumer has read to, per shard.
CREATE TABLE IF NOT EXISTS change_checkpoints (
    consumer TEXT NOT NULL,
    shard TEXT NOT NULL,
    seq TEXT NOT NULL,
    PRIMARY KEY (consumer, shard)
) WITHOUT ROWID;
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
        let (calls, queue) = std::sync::mpsc::channel::<Call>();
        let mut conn = conn;
        std::thread::Builder::new()
            .name("koinonia-store".into())
            // Ends when the last handle to the store is dropped.
            .spawn(move || {
                for call in queue {
                    // A panicking call must not take the store down with it.
                    let _ =
                        std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| call(&mut conn)));
                }
            })
            .map_err(StoreError::Thread)?;
        Ok(Self {
            calls,
            dir: dir.to_owned(),
        })
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Runs `work` with the connection, on the store's thread.
    pub(crate) async fn run<T, E>(
        &self,
        work: impl FnOnce(&mut Connection) -> Result<T, E> + Send + 'static,
    ) -> Result<T, E>
    where
        T: Send + 'static,
        E: From<StoreError> + Send + 'static,
    {
        let (answer, answered) = tokio::sync::oneshot::channel();
        self.calls
            .send(Box::new(move |conn: &mut Connection| {
                // The caller may have gone (a cancelled request): nothing to tell.
                let _ = answer.send(work(conn));
            }))
            .map_err(|_| E::from(StoreError::Closed))?;
        answered.await.map_err(|_| E::from(StoreError::Closed))?
    }
}

pub(crate) fn now_ms() -> i64 {
    chrono::Utc::now().timestamp_millis()
}
