//! Many concurrent small writes, one query per batch.
//!
//! Writers queue their item and wait; one task takes everything queued (up to a bound)
//! and hands it to a batch function that writes it all in one transaction, then answers
//! every writer after the commit. While a batch commits the next gathers, so the busier
//! the server, the more each batch carries. Used for metering debits ([`super::debits`])
//! and clicks ([`super::clicks`]); why a batch beats one transaction per write is said
//! there.

use std::future::Future;

use tokio::sync::{mpsc, oneshot};

use super::group_commit::CommitFailure;
use super::{Result, StoreError};

type Answer<O> = oneshot::Sender<Result<O>>;

pub(crate) struct Batcher<I, O> {
    queue: mpsc::Sender<(I, Answer<O>)>,
}

impl<I, O> Clone for Batcher<I, O> {
    fn clone(&self) -> Self {
        Self {
            queue: self.queue.clone(),
        }
    }
}

impl<I, O> std::fmt::Debug for Batcher<I, O> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Batcher")
    }
}

fn closed() -> StoreError {
    StoreError::Db(sqlx::Error::PoolClosed)
}

impl<I: Send + 'static, O: Send + 'static> Batcher<I, O> {
    /// Starts the task. `write` gets at most `max` items and returns one answer per item,
    /// in order, once they are committed; if it fails, nothing of the batch was written
    /// and every writer gets the error.
    pub(crate) fn start<F, Fut>(max: usize, write: F) -> Self
    where
        F: Fn(Vec<I>) -> Fut + Send + 'static,
        Fut: Future<Output = Result<Vec<O>>> + Send + 'static,
    {
        let (queue, rx) = mpsc::channel(4 * max);
        tokio::spawn(run(max, write, rx));
        Self { queue }
    }

    /// Like [`Batcher::start`], but the batches run on a thread of their own with a
    /// blocking `write`: for a writer whose every statement would otherwise be a hop to
    /// another thread (see `super::debits`). The thread ends when the last `Batcher`
    /// clone is dropped.
    pub(crate) fn start_blocking<F>(max: usize, name: &str, mut write: F) -> Result<Self>
    where
        F: FnMut(Vec<I>) -> Result<Vec<O>> + Send + 'static,
    {
        let (queue, mut rx) = mpsc::channel(4 * max);
        std::thread::Builder::new()
            .name(name.to_owned())
            .spawn(move || {
                while let Some(first) = rx.blocking_recv() {
                    let (items, answers) = gather(first, &mut rx, max);
                    answer(write(items), answers);
                }
            })
            .map_err(|e| StoreError::Db(sqlx::Error::Io(e)))?;
        Ok(Self { queue })
    }

    /// The item's answer, once the transaction that wrote it is committed.
    pub(crate) async fn submit(&self, item: I) -> Result<O> {
        let (tx, rx) = oneshot::channel();
        self.queue.send((item, tx)).await.map_err(|_| closed())?;
        rx.await.map_err(|_| closed())?
    }
}

async fn run<I, O, F, Fut>(max: usize, write: F, mut rx: mpsc::Receiver<(I, Answer<O>)>)
where
    F: Fn(Vec<I>) -> Fut,
    Fut: Future<Output = Result<Vec<O>>>,
{
    while let Some(first) = rx.recv().await {
        let (items, answers) = gather(first, &mut rx, max);
        // One batch at a time: what arrives while this one commits is the next batch.
        answer(write(items).await, answers);
    }
}

/// The first item and whatever else is queued, up to `max`.
fn gather<I, O>(
    first: (I, Answer<O>),
    rx: &mut mpsc::Receiver<(I, Answer<O>)>,
    max: usize,
) -> (Vec<I>, Vec<Answer<O>>) {
    let mut batch = vec![first];
    while batch.len() < max {
        match rx.try_recv() {
            Ok(item) => batch.push(item),
            Err(_) => break,
        }
    }
    batch.into_iter().unzip()
}

/// Gives each writer its item's answer, or everyone the batch's failure.
fn answer<O>(written: Result<Vec<O>>, answers: Vec<Answer<O>>) {
    let n = answers.len();
    match written {
        Ok(outs) if outs.len() == n => {
            for (out, answer) in outs.into_iter().zip(answers) {
                let _ = answer.send(Ok(out));
            }
        }
        Ok(outs) => {
            // A batch function that lost track of its items: say so to everyone rather
            // than answer someone with another's result.
            tracing::error!(
                items = n,
                answers = outs.len(),
                "batch answered the wrong number of items"
            );
            fail(
                answers,
                StoreError::Db(sqlx::Error::Protocol("batch answer count".into())),
            );
        }
        Err(e) => fail(answers, e),
    }
}

fn fail<O>(answers: Vec<Answer<O>>, e: StoreError) {
    let shared = CommitFailure {
        message: e.to_string(),
        unavailable: e.is_unavailable(),
    };
    for answer in answers {
        let _ = answer.send(Err(StoreError::Commit(shared.clone())));
    }
}
