//! Group commit for SQLite's single writer.
//!
//! With `synchronous = FULL` every commit waits for the disk, so one transaction per
//! click caps click capture at the disk's sync rate. Here concurrent writers queue their
//! work; one task runs everything queued in a single transaction, each piece inside its
//! own savepoint (a piece that fails is rolled back alone), commits once, and only then
//! answers every writer. An answer still means "on disk": nothing is acknowledged before
//! the commit, and if the commit fails every writer in the group gets the error.

use futures::future::BoxFuture;
use sqlx::{AnyConnection, AnyPool};
use tokio::sync::{mpsc, oneshot};

use super::{Result, StoreError};

/// Why a group did not commit. Every writer of the group gets a copy, so the cause is kept
/// as its text together with what callers need to know of it: whether it means the
/// database is unavailable (retry) rather than a failed statement.
#[derive(Debug, Clone)]
pub struct CommitFailure {
    pub message: String,
    pub unavailable: bool,
}

impl From<sqlx::Error> for CommitFailure {
    fn from(e: sqlx::Error) -> Self {
        let e = StoreError::Db(e);
        Self {
            unavailable: e.is_unavailable(),
            message: e.to_string(),
        }
    }
}

/// Hands the piece's result over once the group's commit is known.
type Deliver = Box<dyn FnOnce(std::result::Result<(), CommitFailure>) + Send>;
/// One writer's work: runs on the shared connection, says whether it succeeded.
type Job = Box<dyn for<'c> FnOnce(&'c mut AnyConnection) -> BoxFuture<'c, (bool, Deliver)> + Send>;

/// Most pieces in one transaction; bounds how long the first writer waits.
const MAX_GROUP: usize = 128;

#[derive(Clone)]
pub(crate) struct GroupCommit {
    jobs: mpsc::Sender<Job>,
}

impl std::fmt::Debug for GroupCommit {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("GroupCommit")
    }
}

fn closed() -> StoreError {
    StoreError::Db(sqlx::Error::PoolClosed)
}

impl GroupCommit {
    pub(crate) fn start(pool: AnyPool) -> Self {
        let (jobs, rx) = mpsc::channel::<Job>(4 * MAX_GROUP);
        tokio::spawn(run(pool, rx));
        Self { jobs }
    }

    /// Runs `f` in the next group's transaction and returns its result once that
    /// transaction is committed.
    pub(crate) async fn write<T, F>(&self, f: F) -> Result<T>
    where
        T: Send + 'static,
        F: for<'c> FnOnce(&'c mut AnyConnection) -> BoxFuture<'c, Result<T>> + Send + 'static,
    {
        let (tx, rx) = oneshot::channel::<Result<T>>();
        let job: Job = Box::new(move |conn| {
            Box::pin(async move {
                let out = f(conn).await;
                let ok = out.is_ok();
                let deliver: Deliver = Box::new(move |commit| {
                    let _ = tx.send(match commit {
                        Ok(()) => out,
                        Err(m) => Err(StoreError::Commit(m)),
                    });
                });
                (ok, deliver)
            })
        });
        self.jobs.send(job).await.map_err(|_| closed())?;
        rx.await.map_err(|_| closed())?
    }
}

async fn exec(
    conn: &mut AnyConnection,
    sql: &'static str,
) -> std::result::Result<(), CommitFailure> {
    sqlx::raw_sql(sql)
        .execute(&mut *conn)
        .await
        .map(drop)
        .map_err(CommitFailure::from)
}

/// Commits; if that fails, rolls back so the connection is clean for the next group.
async fn commit(conn: &mut AnyConnection) -> std::result::Result<(), CommitFailure> {
    let out = exec(conn, "COMMIT").await;
    if out.is_err() {
        let _ = exec(conn, "ROLLBACK").await;
    }
    out
}

async fn run(pool: AnyPool, mut rx: mpsc::Receiver<Job>) {
    while let Some(first) = rx.recv().await {
        let mut group = vec![first];
        while group.len() < MAX_GROUP {
            match rx.try_recv() {
                Ok(j) => group.push(j),
                Err(_) => break,
            }
        }
        let mut conn = match pool.acquire().await {
            Ok(c) => c,
            Err(e) => {
                fail_all(group, &e.to_string());
                continue;
            }
        };
        if let Err(e) = exec(&mut conn, "BEGIN IMMEDIATE").await {
            fail_all(group, &e.message);
            continue;
        }
        if group.len() == 1
            && let Some(job) = group.pop()
        {
            // Alone: no savepoint needed; a failed piece rolls back the transaction and
            // its own error is its answer.
            let (ok, deliver) = job(&mut conn).await;
            let outcome = if ok {
                commit(&mut conn).await
            } else {
                let _ = exec(&mut conn, "ROLLBACK").await;
                Ok(())
            };
            drop(conn);
            deliver(outcome);
            continue;
        }
        let mut delivers = Vec::with_capacity(group.len());
        let mut broken = None;
        // Closing one piece's savepoint and opening the next is one round trip to the
        // connection's worker thread, not two: each costs as much as a small statement.
        let mut open = exec(&mut conn, "SAVEPOINT piece").await;
        for job in group {
            if let Err(e) = open {
                // The transaction is unusable: this job and the rest are dropped unrun,
                // and their writers read the dropped answer channel as a failure.
                broken = Some(e);
                drop(job);
                open = Ok(());
                continue;
            }
            if broken.is_some() {
                drop(job);
                continue;
            }
            let (ok, deliver) = job(&mut conn).await;
            open = exec(
                &mut conn,
                if ok {
                    "RELEASE piece; SAVEPOINT piece"
                } else {
                    "ROLLBACK TO piece; RELEASE piece; SAVEPOINT piece"
                },
            )
            .await;
            delivers.push(deliver);
        }
        if let Err(e) = open {
            broken.get_or_insert(e);
        }
        let outcome = match broken {
            Some(e) => {
                let _ = exec(&mut conn, "ROLLBACK").await;
                Err(e)
            }
            None => commit(&mut conn).await,
        };
        drop(conn);
        for d in delivers {
            d(outcome.clone());
        }
    }
}

/// Answers every job of a group that could not start: each learns of a failure.
fn fail_all(group: Vec<Job>, why: &str) {
    // A job only delivers after running, and running needs a connection we do not have;
    // dropping the job drops its sender, which the writer reads as "closed".
    tracing::error!(error = why, "group commit could not start a transaction");
    drop(group);
}

#[cfg(test)]
mod tests {
    use super::*;

    async fn pool(dir: &tempfile::TempDir) -> AnyPool {
        sqlx::any::install_default_drivers();
        let url = format!("sqlite://{}?mode=rwc", dir.path().join("g.db").display());
        let pool = sqlx::any::AnyPoolOptions::new()
            .max_connections(1)
            .connect(&url)
            .await
            .unwrap();
        sqlx::raw_sql("CREATE TABLE t (x INTEGER PRIMARY KEY)")
            .execute(&pool)
            .await
            .unwrap();
        pool
    }

    fn insert(
        x: i64,
    ) -> impl for<'c> FnOnce(&'c mut AnyConnection) -> BoxFuture<'c, Result<i64>> + Send + 'static
    {
        move |conn| {
            Box::pin(async move {
                sqlx::query("INSERT INTO t (x) VALUES ($1)")
                    .bind(x)
                    .execute(&mut *conn)
                    .await?;
                Ok(x)
            })
        }
    }

    #[tokio::test]
    async fn concurrent_writers_share_commits_and_a_failing_one_fails_alone() {
        let dir = tempfile::tempdir().unwrap();
        let pool = pool(&dir).await;
        let g = GroupCommit::start(pool.clone());
        // 0..100, and every tenth value twice: the second of each pair breaks the
        // primary key and must fail without taking its group down.
        let values: Vec<i64> = (0..100).chain((0..100).step_by(10)).collect();
        let answers = futures::future::join_all(values.iter().map(|x| g.write(insert(*x)))).await;
        let ok = answers.iter().filter(|a| a.is_ok()).count();
        assert_eq!(ok, 100, "each value is stored once");
        assert_eq!(answers.len() - ok, 10, "the duplicates fail");
        let n: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM t")
            .fetch_one(&pool)
            .await
            .unwrap();
        assert_eq!(n, 100);
    }

    #[tokio::test]
    async fn a_lone_failing_writer_gets_its_error_and_changes_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let pool = pool(&dir).await;
        let g = GroupCommit::start(pool.clone());
        assert_eq!(g.write(insert(1)).await.unwrap(), 1);
        assert!(g.write(insert(1)).await.is_err());
        assert_eq!(g.write(insert(2)).await.unwrap(), 2);
        let n: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM t")
            .fetch_one(&pool)
            .await
            .unwrap();
        assert_eq!(n, 2);
    }
}
