//! The local stack: the whole system as one process on the embedded
//! adapters, with no configuration. It serves every HTTP route of
//! template.yaml, runs its SQS consumers and its change-stream consumers
//! and fires its schedules — all
//! through the same handlers the Lambdas run.

mod consumers;
mod gateway;
mod keys;
pub mod scheduler;
mod server;
mod streams;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio::task::JoinSet;

pub use consumers::sqs_event;
pub use gateway::{Incoming, to_event, to_request};
pub use server::{MAX_BODY_BYTES, Router, RouterError};

use crate::adapters::embedded::{
    EmbeddedBlobs, EmbeddedChanges, EmbeddedQueue, QueueSpec, Store, StoreError,
};
use crate::adapters::metered::{Meter, MeteredQueue, MeteredTable};
use crate::app::{App, EmbeddedParts, QueueSpecs};
use crate::catalog::{Catalog, CatalogError};
use crate::config::Config;
use crate::ports::{Clock, Queue};
use crate::registry::{Entry, Registry};
use crate::telnyx::simulator::{SimConfig, Simulator};
use crate::telnyx::{TelnyxCarrier, WebhookVerifier};

/// How often expired items are swept from the embedded table.
const TTL_SWEEP_EVERY: Duration = Duration::from_secs(60);

#[derive(Debug, thiserror::Error)]
pub enum LocalError {
    #[error(transparent)]
    Catalog(#[from] CatalogError),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("cannot read or create the local keys in {dir}")]
    Keys {
        dir: String,
        #[source]
        source: std::io::Error,
    },
    #[error("cannot listen on {addr} (KOINONIA_ADDR)")]
    Bind {
        addr: SocketAddr,
        #[source]
        source: std::io::Error,
    },
    #[error("template.yaml declares no queue {0}")]
    MissingQueue(&'static str),
    #[error("function {function} is triggered by {queue}, which template.yaml does not declare")]
    UnknownQueue { function: String, queue: String },
    #[error("function {0} has an event in template.yaml but no matching entry in the registry")]
    MissingEntry(String),
    #[error(transparent)]
    Router(#[from] RouterError),
    #[error(transparent)]
    Schedule(#[from] scheduler::ScheduleError),
    #[error("cannot start the Telnyx simulator")]
    Simulator(#[source] std::io::Error),
    #[error(transparent)]
    Config(#[from] crate::config::ConfigError),
}

/// The API key the local stack and its simulator share.
pub const SIMULATOR_API_KEY: &str = "KEY-local";

/// Starts the built-in simulator (signing with the data folder's key) and
/// points the app's carrier and webhook check at it.
async fn start_simulator(app: &mut App) -> Result<Simulator, LocalError> {
    let seed: [u8; 32] = app
        .config
        .telnyx_sim_signing_key
        .as_ref()
        .and_then(|k| k.expose().try_into().ok())
        .unwrap_or_else(rand::random);
    let simulator = Simulator::start(
        SimConfig::new(SIMULATOR_API_KEY, seed).with_settings(&app.config.simulator),
        "127.0.0.1:0"
            .parse()
            .map_err(|_| LocalError::Simulator(std::io::ErrorKind::InvalidInput.into()))?,
    )
    .await
    .map_err(LocalError::Simulator)?;
    let carrier = TelnyxCarrier::new(
        &simulator.base_url(),
        crate::config::Secret::new(SIMULATOR_API_KEY.as_bytes().to_vec()),
    )
    .map_err(|e| LocalError::Simulator(std::io::Error::other(e)))?;
    app.carrier = Some(Arc::new(carrier));
    // Its media links are on loopback: the one private address fetched from.
    app.http = crate::app::media_client(Some(&simulator.base_url()))?;
    if app.webhooks.is_none() {
        app.webhooks = Some(WebhookVerifier::from_key(simulator.public_key()));
    }
    Ok(simulator)
}

/// A running local stack; dropping it without `stop` leaves its tasks running.
pub struct LocalStack {
    pub addr: SocketAddr,
    pub app: Arc<App>,
    pub parts: EmbeddedParts,
    /// The built-in Telnyx simulator, when `TELNYX_API_KEY` is unset.
    pub simulator: Option<Simulator>,
    shutdown: watch::Sender<bool>,
    tasks: JoinSet<()>,
}

fn queue_spec(catalog: &Catalog, id: &'static str) -> Result<QueueSpec, LocalError> {
    catalog
        .queue(id)
        .map(|q| q.spec())
        .ok_or(LocalError::MissingQueue(id))
}

impl LocalStack {
    /// Opens the data folder, binds `config.addr` (port 0 picks one) and
    /// starts the server, consumers, schedules and TTL sweeper.
    pub async fn start(
        config: Config,
        catalog: &Catalog,
        registry: &Registry,
    ) -> Result<Self, LocalError> {
        Self::start_with(config, catalog, registry, None).await
    }

    /// As `start`, with the table and queues counted by `meter` (the bench).
    pub async fn start_with(
        config: Config,
        catalog: &Catalog,
        registry: &Registry,
        meter: Option<Arc<Meter>>,
    ) -> Result<Self, LocalError> {
        Self::launch(config, catalog, registry, meter, None).await
    }

    /// As `start`, with every handler reading the time from `clock` (tests
    /// that need a particular hour).
    pub async fn start_clocked(
        config: Config,
        catalog: &Catalog,
        registry: &Registry,
        clock: Arc<dyn Clock>,
    ) -> Result<Self, LocalError> {
        Self::launch(config, catalog, registry, None, Some(clock)).await
    }

    async fn launch(
        mut config: Config,
        catalog: &Catalog,
        registry: &Registry,
        meter: Option<Arc<Meter>>,
        clock: Option<Arc<dyn Clock>>,
    ) -> Result<Self, LocalError> {
        let data_dir = config.data_dir.clone();
        let keys =
            keys::load_or_create(&data_dir, &mut config).map_err(|source| LocalError::Keys {
                dir: data_dir.display().to_string(),
                source,
            })?;
        let store = Store::open(&config.data_dir)?;
        let listener = TcpListener::bind(config.addr)
            .await
            .map_err(|source| LocalError::Bind {
                addr: config.addr,
                source,
            })?;
        let addr = listener.local_addr().map_err(|source| LocalError::Bind {
            addr: config.addr,
            source,
        })?;
        config.addr = addr;
        if config.public_url.is_none() {
            config.public_url = Some(format!("http://{addr}"));
        }

        let blobs = EmbeddedBlobs::new(
            store.clone(),
            &format!("http://{addr}"),
            keys.blob_signing_key,
        );
        let parts = EmbeddedParts::new(
            store.clone(),
            QueueSpecs {
                fanout: queue_spec(catalog, "FanoutQueue")?,
                send: queue_spec(catalog, "SendQueue")?,
                media: queue_spec(catalog, "MediaQueue")?,
            },
            blobs.clone(),
        );
        let mut app = App::embedded(config, &parts)?;
        if let Some(clock) = clock {
            app.clock = clock;
        }
        let simulator = match app.carrier {
            Some(_) => None,
            None => Some(start_simulator(&mut app).await?),
        };
        if let Some(meter) = meter {
            app.table = Arc::new(MeteredTable {
                inner: Arc::clone(&app.table),
                meter: Arc::clone(&meter),
            });
            for queue in [&mut app.fanout_queue, &mut app.send_queue] {
                *queue = Arc::new(MeteredQueue {
                    inner: Arc::clone(queue),
                    meter: Arc::clone(&meter),
                });
            }
        }
        let app = Arc::new(app);
        let router = Router::new(catalog, registry)?;
        let (shutdown, watcher) = watch::channel(false);
        let mut tasks = JoinSet::new();

        for function in &catalog.functions {
            for trigger in &function.queue_triggers {
                let Some(Entry::Sqs(handler)) = registry.get(&function.id) else {
                    return Err(LocalError::MissingEntry(function.id.clone()));
                };
                let spec = catalog
                    .queue(&trigger.queue)
                    .ok_or_else(|| LocalError::UnknownQueue {
                        function: function.id.clone(),
                        queue: trigger.queue.clone(),
                    })?
                    .spec();
                let queue: Arc<dyn Queue> = match trigger.queue.as_str() {
                    "FanoutQueue" => Arc::clone(&app.fanout_queue),
                    "SendQueue" => Arc::clone(&app.send_queue),
                    "MediaQueue" => Arc::clone(&app.media_queue),
                    _ => Arc::new(EmbeddedQueue::new(store.clone(), spec)),
                };
                tasks.spawn(consumers::run(
                    Arc::clone(&app),
                    queue,
                    trigger.clone(),
                    function.id.clone(),
                    handler,
                    watcher.clone(),
                ));
            }
            for trigger in &function.stream_triggers {
                let Some(Entry::Stream(handler)) = registry.get(&function.id) else {
                    return Err(LocalError::MissingEntry(function.id.clone()));
                };
                let on_failure = match &trigger.on_failure_queue {
                    Some(id) => {
                        let spec = catalog
                            .queue(id)
                            .ok_or_else(|| LocalError::UnknownQueue {
                                function: function.id.clone(),
                                queue: id.clone(),
                            })?
                            .spec();
                        Some(Arc::new(EmbeddedQueue::new(store.clone(), spec)) as Arc<dyn Queue>)
                    }
                    None => None,
                };
                let mapping = streams::Mapping {
                    function_id: function.id.clone(),
                    handler,
                    batch_size: trigger.batch_size,
                    batching_window: trigger.batching_window,
                    bisect_on_error: trigger.bisect_on_error,
                    maximum_retry_attempts: trigger.maximum_retry_attempts,
                    item_types: trigger.item_types.clone(),
                    on_failure,
                };
                tasks.spawn(streams::run(
                    Arc::clone(&app),
                    EmbeddedChanges::new(store.clone()),
                    mapping,
                    watcher.clone(),
                ));
            }
            for expression in &function.schedules {
                let Some(Entry::Schedule(handler)) = registry.get(&function.id) else {
                    return Err(LocalError::MissingEntry(function.id.clone()));
                };
                let schedule = scheduler::Schedule::parse(expression)?;
                tasks.spawn(scheduler::run(
                    Arc::clone(&app),
                    function.id.clone(),
                    schedule,
                    handler,
                    watcher.clone(),
                ));
            }
        }

        let table = parts.table.clone();
        let mut sweeper_stop = watcher.clone();
        tasks.spawn(async move {
            loop {
                tokio::select! {
                    _ = tokio::time::sleep(TTL_SWEEP_EVERY) => {}
                    _ = sweeper_stop.changed() => return,
                }
                if let Err(e) = table.sweep_expired().await {
                    tracing::warn!(error = %e, "TTL sweep failed");
                }
            }
        });

        let server = Arc::new(server::Server {
            app: Arc::clone(&app),
            router,
            blobs,
            simulator: simulator.as_ref().map(Simulator::handle),
        });
        tasks.spawn(server.serve(listener, watcher));
        tracing::info!(addr = %addr, data_dir = %app.config.data_dir.display(), "local stack listening");
        Ok(Self {
            addr,
            app,
            parts,
            simulator,
            shutdown,
            tasks,
        })
    }

    pub fn base_url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Stops accepting, lets consumers finish their batch, and waits.
    pub async fn stop(mut self) {
        let _ = self.shutdown.send(true);
        while self.tasks.join_next().await.is_some() {}
    }
}

/// The `cargo run` entry: the built-in catalog and registry until Ctrl-C.
pub async fn run(config: Config) -> Result<(), LocalError> {
    let catalog = Catalog::builtin()?;
    let stack = LocalStack::start(config, catalog, &Registry::builtin()).await?;
    println!(
        "Koinonia local stack on {} (data in {})",
        stack.base_url(),
        stack.app.config.data_dir.display()
    );
    let _ = tokio::signal::ctrl_c().await;
    stack.stop().await;
    Ok(())
}
