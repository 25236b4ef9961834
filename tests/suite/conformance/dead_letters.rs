//! The dead-letter use cases (what `koinonia-ops dlq` runs) on both queue
//! adapters: listing leaves the letters in place, a redrive moves exactly
//! the chosen ones back, a purge empties the queue.

use std::collections::BTreeSet;
use std::time::Duration;

use shared::dead_letters::{self, Selection};
use shared::ports::OutgoingMessage;

use crate::support::{World, conformance};

fn job(n: usize) -> OutgoingMessage {
    OutgoingMessage::new(format!(
        r#"{{"churchId":"church-{n}","messageId":"message-{n}","memberIds":["a","b","c"]}}"#
    ))
}

async fn dead(world: &World, n: usize) {
    world
        .dead_letters
        .send_batch((0..n).map(job).collect())
        .await
        .unwrap();
}

async fn depth_of(queue: &dyn shared::ports::Queue) -> u64 {
    queue.approximate_depth().await.unwrap()
}

/// Three dead letters, listed once.
async fn three_listed(world: &World) -> Vec<dead_letters::DeadLetter> {
    dead(world, 3).await;
    dead_letters::list(world.dead_letters.as_ref(), 100)
        .await
        .unwrap()
}

async fn listing_shows_each_jobs_ids(world: &World) {
    let listed = three_listed(world).await;
    let churches: BTreeSet<_> = listed
        .iter()
        .filter_map(|l| l.job.church_id.clone())
        .collect();
    assert_eq!(
        churches,
        ["church-0", "church-1", "church-2"]
            .map(String::from)
            .into()
    );
    assert!(listed.iter().all(|l| l.job.recipients() == 3));
}

async fn listing_leaves_the_letters_queued(world: &World) {
    three_listed(world).await;
    // Still there, and visible at once for the next command.
    let again = dead_letters::list(world.dead_letters.as_ref(), 100)
        .await
        .unwrap();
    assert_eq!(again.len(), 3);
    let limited = dead_letters::list(world.dead_letters.as_ref(), 2)
        .await
        .unwrap();
    assert!(limited.len() >= 2, "{limited:?}");
}

/// Three dead letters, one of them (the first listed) redriven: its
/// message id and how many the redrive moved.
async fn one_of_three_redriven(world: &World) -> (String, usize) {
    let listed = three_listed(world).await;
    let chosen = listed[0].message_id.clone();
    let moved = dead_letters::redrive(
        world.dead_letters.as_ref(),
        world.queue.as_ref(),
        &Selection::Only([chosen.clone()].into()),
    )
    .await
    .unwrap();
    (chosen, moved)
}

async fn a_redrive_moves_only_the_chosen_letters(world: &World) {
    let (chosen, moved) = one_of_three_redriven(world).await;
    assert_eq!(moved, 1);
    let back = world
        .queue
        .receive(10, Duration::from_secs(1), None)
        .await
        .unwrap();
    assert_eq!(back.len(), 1);
    assert_eq!(
        dead_letters::list(world.dead_letters.as_ref(), 100)
            .await
            .unwrap()
            .len(),
        2
    );
    assert!(
        !dead_letters::list(world.dead_letters.as_ref(), 100)
            .await
            .unwrap()
            .iter()
            .any(|l| l.message_id == chosen)
    );
}

async fn a_redrive_of_all_moves_every_letter_left(world: &World) {
    one_of_three_redriven(world).await;
    let moved = dead_letters::redrive(
        world.dead_letters.as_ref(),
        world.queue.as_ref(),
        &Selection::All,
    )
    .await
    .unwrap();
    assert_eq!(moved, 2);
    assert_eq!(depth_of(world.dead_letters.as_ref()).await, 0);
}

async fn a_purge_empties_the_dead_letter_queue_only(world: &World) {
    dead(world, 4).await;
    world.queue.send_batch(vec![job(9)]).await.unwrap();
    let purged = dead_letters::purge(world.dead_letters.as_ref())
        .await
        .unwrap();
    assert_eq!(purged, 4);
    assert_eq!(depth_of(world.dead_letters.as_ref()).await, 0);
    assert_eq!(depth_of(world.queue.as_ref()).await, 1);
}

conformance!(
    listing_shows_each_jobs_ids,
    listing_leaves_the_letters_queued,
    a_redrive_moves_only_the_chosen_letters,
    a_redrive_of_all_moves_every_letter_left,
    a_purge_empties_the_dead_letter_queue_only,
);
