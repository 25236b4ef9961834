//! `koinonia-ops dlq` as the on-call engineer runs it, against the local
//! stack's embedded queues and against SQS on the emulator.

use std::io::Write;
use std::process::{Command, Output, Stdio};

use shared::adapters::aws::SqsQueue;
use shared::adapters::aws::provision::create_queue;
use shared::adapters::embedded::{EmbeddedQueue, QueueSpec, Store};
use shared::catalog::Catalog;
use shared::ports::{OutgoingMessage, Queue};

use crate::support::{aws_clients, emulator_endpoint, unique};

/// A send job as a dead letter; its text must never be printed.
fn job(n: usize) -> OutgoingMessage {
    OutgoingMessage::new(format!(
        r#"{{"churchId":"church-{n}","messageId":"message-{n}","memberIds":["m1"],"text":"secret words +13035550123"}}"#
    ))
}

fn ops(env: &[(&str, String)], args: &[&str], stdin: &str) -> Output {
    let mut command = Command::new(env!("CARGO_BIN_EXE_koinonia-ops"));
    command
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    for (k, v) in env {
        command.env(k, v);
    }
    let mut child = command.spawn().unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(stdin.as_bytes())
        .unwrap();
    child.wait_with_output().unwrap()
}

fn stdout(output: &Output) -> String {
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8_lossy(&output.stdout).into_owned()
}

/// list, redrive one, refuse a purge not confirmed, purge; `send` is the
/// send queue and `dead` its dead-letter queue as the command finds them.
async fn the_dead_letter_commands_work(env: &[(&str, String)], send: &dyn Queue, dead: &dyn Queue) {
    dead.send_batch(vec![job(0), job(1)]).await.unwrap();
    let listed = stdout(&ops(env, &["dlq", "list", "send"], ""));
    assert!(listed.contains("# send dead letters: 2"), "{listed}");
    assert!(
        listed.contains("church=church-0") && listed.contains("message=message-1"),
        "{listed}"
    );
    assert!(listed.contains("recipients=1"), "{listed}");
    assert!(
        !listed.contains("secret") && !listed.contains("+1303"),
        "never a body or a phone: {listed}"
    );
    let everything = stdout(&ops(env, &["dlq", "list"], ""));
    for queue in ["fanout", "send", "media"] {
        assert!(
            everything.contains(&format!("# {queue} dead letters:")),
            "{everything}"
        );
    }

    let id = listed
        .lines()
        .find(|l| l.contains("church-0"))
        .and_then(|l| l.split('\t').next())
        .unwrap()
        .to_owned();
    let shown = stdout(&ops(env, &["dlq", "show", "send", &id], ""));
    assert!(
        shown.starts_with(&id) && shown.contains("church-0"),
        "{shown}"
    );
    let redriven = stdout(&ops(env, &["dlq", "redrive", "send", &id], ""));
    assert!(
        redriven.contains("redrove 1 dead letters to the send queue"),
        "{redriven}"
    );
    let back = send
        .receive(10, std::time::Duration::from_secs(1), None)
        .await
        .unwrap();
    assert_eq!(back.len(), 1);
    assert!(back[0].body.contains("church-0"));

    let refused = stdout(&ops(env, &["dlq", "purge", "send"], "no\n"));
    assert!(refused.contains("nothing purged"), "{refused}");
    assert_eq!(dead.approximate_depth().await.unwrap(), 1);
    let purged = stdout(&ops(env, &["dlq", "purge", "send"], "send\n"));
    assert!(purged.contains("purged 1 dead letters"), "{purged}");
    assert_eq!(dead.approximate_depth().await.unwrap(), 0);

    let usage = ops(env, &["dlq", "redrive", "send"], "");
    assert_eq!(usage.status.code(), Some(64), "redrive names what it takes");
    assert!(String::from_utf8_lossy(&usage.stderr).contains("--all"));
    let unknown = ops(env, &["dlq", "list", "sms"], "");
    assert_eq!(unknown.status.code(), Some(64));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dead_letter_commands_on_the_local_stacks_queues() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path()).unwrap();
    let catalog = Catalog::builtin().unwrap();
    let decl = catalog.queue("SendQueue").unwrap();
    let send = EmbeddedQueue::new(store.clone(), decl.spec());
    let dead = EmbeddedQueue::new(store, QueueSpec::new(decl.redrive.clone().unwrap().0));
    let env = [("KOINONIA_DATA_DIR", dir.path().display().to_string())];
    the_dead_letter_commands_work(&env, &send, &dead).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dead_letter_commands_on_sqs() {
    let clients = aws_clients().await;
    let mut env = vec![
        ("AWS_ENDPOINT_URL", emulator_endpoint()),
        ("AWS_ACCESS_KEY_ID", "test".to_owned()),
        ("AWS_SECRET_ACCESS_KEY", "test".to_owned()),
        ("AWS_REGION", "us-east-1".to_owned()),
        ("AWS_EC2_METADATA_DISABLED", "true".to_owned()),
    ];
    let mut queues = Vec::new();
    for (name, var) in [
        ("fanout", "FANOUT_QUEUE_URL"),
        ("send", "SEND_QUEUE_URL"),
        ("media", "MEDIA_QUEUE_URL"),
    ] {
        let prefix = unique(name);
        let dlq = create_queue(&clients, &format!("{prefix}-dlq"), None)
            .await
            .unwrap();
        let queue = create_queue(&clients, &prefix, Some((&dlq, 5)))
            .await
            .unwrap();
        env.push((var, queue.clone()));
        queues.push((queue, dlq));
    }
    let (send, dead) = &queues[1];
    let send = SqsQueue::new(clients.sqs.clone(), send);
    let dead = SqsQueue::new(clients.sqs.clone(), dead);
    the_dead_letter_commands_work(&env, &send, &dead).await;
}
