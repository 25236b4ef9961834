//! Operations on the dead-letter queues, for the on-call engineer.
//!
//! ```text
//! koinonia-ops dlq list    [fanout|send|media] [--limit N]
//! koinonia-ops dlq show    <fanout|send|media> <message-id>
//! koinonia-ops dlq redrive <fanout|send|media> (--all | <message-id>...)
//! koinonia-ops dlq purge   <fanout|send|media> [--yes]
//! ```
//!
//! Against AWS: set `FANOUT_QUEUE_URL`, `SEND_QUEUE_URL` and
//! `MEDIA_QUEUE_URL` (the stack's outputs) and the usual AWS credentials;
//! each dead-letter queue is found from its queue's redrive policy.
//! Otherwise it works on the local stack's embedded queues in
//! `KOINONIA_DATA_DIR` (default `./.koinonia`). It prints ids and counts,
//! never a phone number or a message body.

use std::collections::BTreeSet;
use std::io::{BufRead, Write};
use std::sync::Arc;

use shared::adapters::aws::{AwsClients, SqsQueue};
use shared::adapters::embedded::{EmbeddedQueue, QueueSpec, Store};
use shared::catalog::Catalog;
use shared::dead_letters::{self, DeadLetter, Selection};
use shared::ports::Queue;

const QUEUES: [(&str, &str, &str); 3] = [
    ("fanout", "FanoutQueue", "FANOUT_QUEUE_URL"),
    ("send", "SendQueue", "SEND_QUEUE_URL"),
    ("media", "MediaQueue", "MEDIA_QUEUE_URL"),
];

const USAGE: &str = "usage:
  koinonia-ops dlq list    [fanout|send|media] [--limit N]
  koinonia-ops dlq show    <fanout|send|media> <message-id>
  koinonia-ops dlq redrive <fanout|send|media> (--all | <message-id>...)
  koinonia-ops dlq purge   <fanout|send|media> [--yes]";

#[derive(Debug, thiserror::Error)]
enum OpsError {
    #[error("{0}\n{USAGE}")]
    Usage(String),
    #[error("{0}")]
    Setup(String),
    #[error(transparent)]
    Queue(#[from] shared::ports::QueueError),
    #[error("cannot read the answer: {0}")]
    Io(#[from] std::io::Error),
}

/// A queue and its dead-letter queue.
struct Pair {
    name: &'static str,
    queue: Arc<dyn Queue>,
    dead_letters: Arc<dyn Queue>,
}

async fn pairs() -> Result<Vec<Pair>, OpsError> {
    let on_aws = QUEUES
        .iter()
        .any(|(_, _, var)| std::env::var_os(var).is_some());
    let mut pairs = Vec::new();
    if on_aws {
        let endpoint = std::env::var("AWS_ENDPOINT_URL").ok();
        let clients = AwsClients::load(endpoint.as_deref()).await;
        for (name, _, var) in QUEUES {
            let url = std::env::var(var).map_err(|_| {
                OpsError::Setup(format!("{var} is missing: set all three queue URLs"))
            })?;
            let queue = SqsQueue::new(clients.sqs.clone(), url);
            let dlq = queue.dead_letter_queue().await?.ok_or_else(|| {
                OpsError::Setup(format!("{var} names a queue without a redrive policy"))
            })?;
            pairs.push(Pair {
                name,
                queue: Arc::new(queue),
                dead_letters: Arc::new(dlq),
            });
        }
    } else {
        let dir = std::env::var("KOINONIA_DATA_DIR")
            .unwrap_or_else(|_| shared::config::DEFAULT_DATA_DIR.to_owned());
        let store = Store::open(std::path::Path::new(&dir))
            .map_err(|e| OpsError::Setup(format!("cannot open the local store in {dir}: {e}")))?;
        let catalog = Catalog::builtin().map_err(|e| OpsError::Setup(e.to_string()))?;
        for (name, id, _) in QUEUES {
            let decl = catalog
                .queue(id)
                .ok_or_else(|| OpsError::Setup(format!("template.yaml declares no {id}")))?;
            let (dlq, _) = decl
                .redrive
                .clone()
                .ok_or_else(|| OpsError::Setup(format!("{id} has no dead-letter queue")))?;
            pairs.push(Pair {
                name,
                queue: Arc::new(EmbeddedQueue::new(store.clone(), decl.spec())),
                dead_letters: Arc::new(EmbeddedQueue::new(store.clone(), QueueSpec::new(dlq))),
            });
        }
    }
    Ok(pairs)
}

fn print(letter: &DeadLetter) {
    let sent = chrono::DateTime::from_timestamp_millis(letter.sent_at_ms)
        .map(|t| t.format("%Y-%m-%dT%H:%M:%SZ").to_string())
        .unwrap_or_else(|| "-".into());
    let or_dash = |v: &Option<String>| v.clone().unwrap_or_else(|| "-".into());
    println!(
        "{}\treceives={}\tsent={}\tchurch={}\tmessage={}\tconversation={}\trecipients={}",
        letter.message_id,
        letter.receive_count,
        sent,
        or_dash(&letter.job.church_id),
        or_dash(&letter.job.message_id),
        or_dash(&letter.job.conversation_id),
        letter.job.recipients()
    );
}

fn pick<'a>(pairs: &'a [Pair], name: Option<&String>) -> Result<&'a Pair, OpsError> {
    let name =
        name.ok_or_else(|| OpsError::Usage("name the queue: fanout, send or media".into()))?;
    pairs
        .iter()
        .find(|p| p.name == name)
        .ok_or_else(|| OpsError::Usage(format!("{name:?} is not fanout, send or media")))
}

async fn run(args: &[String]) -> Result<(), OpsError> {
    let (Some("dlq"), Some(command)) = (args.first().map(String::as_str), args.get(1)) else {
        return Err(OpsError::Usage("the command is `dlq …`".into()));
    };
    let rest = &args[2..];
    let pairs = pairs().await?;
    match command.as_str() {
        "list" => {
            let limit = match rest.iter().position(|a| a == "--limit") {
                Some(i) => rest
                    .get(i + 1)
                    .and_then(|n| n.parse().ok())
                    .ok_or_else(|| OpsError::Usage("--limit takes a number".into()))?,
                None => 100,
            };
            let chosen: Vec<&Pair> = match rest.first().filter(|a| !a.starts_with("--")) {
                Some(name) => vec![pick(&pairs, Some(name))?],
                None => pairs.iter().collect(),
            };
            for pair in chosen {
                let letters = dead_letters::list(pair.dead_letters.as_ref(), limit).await?;
                println!("# {} dead letters: {}", pair.name, letters.len());
                letters.iter().for_each(print);
            }
        }
        "show" => {
            let pair = pick(&pairs, rest.first())?;
            let id = rest
                .get(1)
                .ok_or_else(|| OpsError::Usage("name the message id to show".into()))?;
            let letters = dead_letters::list(pair.dead_letters.as_ref(), usize::MAX).await?;
            let letter = letters
                .iter()
                .find(|l| &l.message_id == id)
                .ok_or_else(|| OpsError::Setup(format!("no dead letter {id} in {}", pair.name)))?;
            print(letter);
        }
        "redrive" => {
            let pair = pick(&pairs, rest.first())?;
            let ids: BTreeSet<String> = rest[1..]
                .iter()
                .filter(|a| *a != "--all")
                .cloned()
                .collect();
            let selection = match (rest[1..].iter().any(|a| a == "--all"), ids.is_empty()) {
                (true, true) => Selection::All,
                (false, false) => Selection::Only(ids),
                _ => {
                    return Err(OpsError::Usage(
                        "redrive takes --all or message ids, not both".into(),
                    ));
                }
            };
            let moved =
                dead_letters::redrive(pair.dead_letters.as_ref(), pair.queue.as_ref(), &selection)
                    .await?;
            println!("redrove {moved} dead letters to the {} queue", pair.name);
        }
        "purge" => {
            let pair = pick(&pairs, rest.first())?;
            if !rest.iter().any(|a| a == "--yes") {
                print!(
                    "Delete every dead letter of the {} queue for good? Type {} to confirm: ",
                    pair.name, pair.name
                );
                std::io::stdout().flush()?;
                let mut answer = String::new();
                std::io::stdin().lock().read_line(&mut answer)?;
                if answer.trim() != pair.name {
                    println!("nothing purged");
                    return Ok(());
                }
            }
            let purged = dead_letters::purge(pair.dead_letters.as_ref()).await?;
            println!("purged {purged} dead letters of the {} queue", pair.name);
        }
        other => return Err(OpsError::Usage(format!("{other:?} is not a dlq command"))),
    }
    Ok(())
}

#[tokio::main]
async fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if let Err(e) = run(&args).await {
        eprintln!("koinonia-ops: {e}");
        std::process::exit(if matches!(e, OpsError::Usage(_)) {
            64
        } else {
            1
        });
    }
}
