//! The PostgreSQL job store: every replica of `kpath serve` shares one database (`--database-url`).
//!
//! Jobs are rows claimed with `SELECT … FOR UPDATE SKIP LOCKED` and held by a lease the holder renews;
//! the lane rules are enforced by two partial unique indexes (one waiting and one running job per lane)
//! and by serialising the offers of one lane with a transaction-scoped advisory lock. A job queue crate
//! was considered (graphile_worker's job keys replace a waiting job, apalis has PostgreSQL storage), but
//! neither cancels the running job of a lane, hands a job over with the check run its first holder
//! started, or dedupes deliveries in the same transaction; these few statements do all of it.
//!
//! The schema ships in the binary (`migrations/`) and is applied at start-up; sqlx's migrator holds an
//! advisory lock meanwhile, so replicas starting together apply it once.

use std::str::FromStr;
use std::time::Duration;

use sqlx::Connection;
use sqlx::postgres::{PgConnectOptions, PgPool, PgPoolOptions};

use super::{Cancel, Claimed, Enqueued, JobId, Lease, Store, StoreError};
use crate::app::events::Event;
use crate::app::queue::Job;

static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations");

/// A claimed row: id, event, check run, attempts, cancel, delivery.
type ClaimedRow = (i64, String, Option<i64>, i32, bool, Option<String>);

/// How long a connection may be waited for before the store counts as unavailable.
const ACQUIRE_TIMEOUT: Duration = Duration::from_secs(5);

pub struct PgStore {
    pool: PgPool,
}

impl std::fmt::Debug for PgStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PgStore").finish_non_exhaustive()
    }
}

/// A database error as text, without the URL's password should a driver ever quote it.
fn failed(context: &str, error: impl std::fmt::Display) -> StoreError {
    StoreError(format!("{context}: {error}"))
}

fn millis(duration: Duration) -> i64 {
    i64::try_from(duration.as_millis()).unwrap_or(i64::MAX)
}

impl PgStore {
    /// Connects to `url` (`postgres://…`) with at most `connections` connections and applies the schema.
    pub async fn connect(url: &str, connections: u32) -> Result<PgStore, StoreError> {
        let options = PgConnectOptions::from_str(url)
            .map_err(|_| StoreError("the database URL is not a valid postgres:// URL".to_string()))?
            .application_name("kpath");
        let pool = PgPoolOptions::new()
            .max_connections(connections.max(2))
            .acquire_timeout(ACQUIRE_TIMEOUT)
            .connect_with(options)
            .await
            .map_err(|e| failed("cannot connect to the database", redact_url(&e.to_string(), url)))?;
        MIGRATOR.run(&pool).await.map_err(|e| failed("cannot apply the database schema", e))?;
        Ok(PgStore { pool })
    }

    /// How many jobs are stored in each state (for tests and the benchmark).
    #[cfg(any(test, feature = "fake-github"))]
    pub async fn counts(&self) -> Result<(i64, i64), StoreError> {
        sqlx::query_as(
            "SELECT count(*) FILTER (WHERE state = 'waiting'), count(*) FILTER (WHERE state = 'running') FROM kpath_jobs",
        )
        .fetch_one(&self.pool)
        .await
        .map_err(|e| failed("cannot count jobs", e))
    }
}

/// `text` with the password of `url`, if any, replaced.
fn redact_url(text: &str, url: &str) -> String {
    let password = url
        .split_once("://")
        .and_then(|(_, rest)| rest.split_once('@'))
        .and_then(|(userinfo, _)| userinfo.split_once(':'))
        .map(|(_, password)| password)
        .filter(|p| !p.is_empty());
    match password {
        Some(password) => text.replace(password, "***"),
        None => text.to_string(),
    }
}

impl Store for PgStore {
    async fn enqueue(&self, job: Job, delivery: Option<String>) -> Result<Enqueued, StoreError> {
        let event = serde_json::to_string(&job.event).map_err(|e| failed("cannot store the event", e))?;
        let mut conn = self.pool.acquire().await.map_err(|e| failed("cannot store the job", e))?;
        let mut tx = conn.begin().await.map_err(|e| failed("cannot store the job", e))?;
        let err = |e: sqlx::Error| failed("cannot store the job", e);
        // Offers of one lane are serialised; other lanes go on in parallel.
        sqlx::query("SELECT pg_advisory_xact_lock(hashtextextended($1, 0))")
            .bind(format!("{}\n{}", job.lane.repo, job.lane.key))
            .execute(&mut *tx)
            .await
            .map_err(err)?;
        if let Some(delivery) = &delivery {
            let fresh = sqlx::query("INSERT INTO kpath_deliveries (id) VALUES ($1) ON CONFLICT DO NOTHING")
                .bind(delivery)
                .execute(&mut *tx)
                .await
                .map_err(err)?
                .rows_affected();
            if fresh == 0 {
                return Ok(Enqueued::Redelivery);
            }
        }
        if let Some(head) = job.head() {
            let first = sqlx::query("INSERT INTO kpath_reviewed (repo, head) VALUES ($1, $2) ON CONFLICT DO NOTHING")
                .bind(&job.lane.repo)
                .bind(head)
                .execute(&mut *tx)
                .await
                .map_err(err)?
                .rows_affected();
            if first == 0 && !job.is_requested() {
                tx.commit().await.map_err(err)?;
                return Ok(Enqueued::Dropped);
            }
            let running: Option<(i64, Option<String>)> =
                sqlx::query_as("SELECT id, head FROM kpath_jobs WHERE repo = $1 AND lane = $2 AND state = 'running'")
                    .bind(&job.lane.repo)
                    .bind(&job.lane.key)
                    .fetch_optional(&mut *tx)
                    .await
                    .map_err(err)?;
            if let Some((id, running_head)) = running {
                if running_head.as_deref() == Some(head) {
                    tx.commit().await.map_err(err)?;
                    return Ok(Enqueued::Dropped);
                }
                sqlx::query("UPDATE kpath_jobs SET cancel = TRUE WHERE id = $1")
                    .bind(id)
                    .execute(&mut *tx)
                    .await
                    .map_err(err)?;
            }
        }
        sqlx::query("DELETE FROM kpath_jobs WHERE repo = $1 AND lane = $2 AND state = 'waiting'")
            .bind(&job.lane.repo)
            .bind(&job.lane.key)
            .execute(&mut *tx)
            .await
            .map_err(err)?;
        sqlx::query(
            "INSERT INTO kpath_jobs (repo, lane, state, head, event, delivery) VALUES ($1, $2, 'waiting', $3, $4, $5)",
        )
        .bind(&job.lane.repo)
        .bind(&job.lane.key)
        .bind(job.head())
        .bind(event)
        .bind(&delivery)
        .execute(&mut *tx)
        .await
        .map_err(err)?;
        tx.commit().await.map_err(err)?;
        Ok(Enqueued::Queued)
    }

    async fn claim(&self, owner: &str, lease: Duration) -> Result<Option<Claimed>, StoreError> {
        // A running job whose lease ran out (its holder died or handed it back) first: its check run is
        // in progress. Then the oldest waiting job of a lane nobody runs.
        let row: Option<ClaimedRow> = sqlx::query_as(
            "WITH candidate AS (
                SELECT j.id FROM kpath_jobs j
                WHERE (j.state = 'running' AND j.lease_until < now())
                   OR (j.state = 'waiting' AND NOT EXISTS (
                        SELECT 1 FROM kpath_jobs r WHERE r.repo = j.repo AND r.lane = j.lane AND r.state = 'running'))
                ORDER BY (j.state = 'running') DESC, j.id
                LIMIT 1
                FOR UPDATE SKIP LOCKED
            )
            UPDATE kpath_jobs k
            SET state = 'running', owner = $1, lease_until = now() + $2 * interval '1 millisecond',
                attempts = k.attempts + 1
            FROM candidate WHERE k.id = candidate.id
            RETURNING k.id, k.event, k.check_run, k.attempts, k.cancel, k.delivery",
        )
        .bind(owner)
        .bind(millis(lease))
        .fetch_optional(&self.pool)
        .await
        .map_err(|e| failed("cannot claim a job", e))?;
        let Some((id, event, check_run, attempts, cancelled, delivery)) = row else { return Ok(None) };
        let job = serde_json::from_str::<Event>(&event).ok().and_then(Job::from_event);
        let Some(job) = job else {
            // Written by another version of kpath and unreadable by this one: dropped, not retried forever.
            tracing::error!(job = id, "a stored job cannot be read; dropped");
            self.finish(id, owner).await?;
            return Ok(None);
        };
        let cancel = Cancel::default();
        if cancelled {
            cancel.cancel();
        }
        Ok(Some(Claimed {
            id,
            job,
            check_run: check_run.and_then(|r| u64::try_from(r).ok()),
            attempt: u32::try_from(attempts).unwrap_or(u32::MAX),
            cancel,
            delivery,
        }))
    }

    async fn renew(&self, id: JobId, owner: &str, lease: Duration) -> Result<Lease, StoreError> {
        let row: Option<(bool,)> = sqlx::query_as(
            "UPDATE kpath_jobs SET lease_until = now() + $3 * interval '1 millisecond'
             WHERE id = $1 AND owner = $2 AND state = 'running' RETURNING cancel",
        )
        .bind(id)
        .bind(owner)
        .bind(millis(lease))
        .fetch_optional(&self.pool)
        .await
        .map_err(|e| failed("cannot renew a lease", e))?;
        Ok(match row {
            Some((cancel,)) => Lease::Held { cancel },
            None => Lease::Lost,
        })
    }

    async fn record_check_run(&self, id: JobId, owner: &str, run: u64) -> Result<(), StoreError> {
        let run = i64::try_from(run).map_err(|_| StoreError(format!("check run id {run} is out of range")))?;
        sqlx::query("UPDATE kpath_jobs SET check_run = $3 WHERE id = $1 AND owner = $2")
            .bind(id)
            .bind(owner)
            .bind(run)
            .execute(&self.pool)
            .await
            .map_err(|e| failed("cannot record the check run", e))?;
        Ok(())
    }

    async fn finish(&self, id: JobId, owner: &str) -> Result<(), StoreError> {
        sqlx::query("DELETE FROM kpath_jobs WHERE id = $1 AND owner = $2")
            .bind(id)
            .bind(owner)
            .execute(&self.pool)
            .await
            .map_err(|e| failed("cannot finish a job", e))?;
        Ok(())
    }

    async fn hand_back(&self, id: JobId, owner: &str) -> Result<(), StoreError> {
        sqlx::query(
            "UPDATE kpath_jobs SET owner = NULL, lease_until = now() - interval '1 second'
             WHERE id = $1 AND owner = $2 AND state = 'running'",
        )
        .bind(id)
        .bind(owner)
        .execute(&self.pool)
        .await
        .map_err(|e| failed("cannot hand a job back", e))?;
        Ok(())
    }

    async fn waiting(&self) -> Result<u64, StoreError> {
        let (count,): (i64,) = sqlx::query_as("SELECT count(*) FROM kpath_jobs WHERE state = 'waiting'")
            .fetch_one(&self.pool)
            .await
            .map_err(|e| failed("cannot count waiting jobs", e))?;
        Ok(u64::try_from(count).unwrap_or(0))
    }

    async fn take_posting(&self, installation: u64, per_minute: u32) -> Result<Option<Duration>, StoreError> {
        let installation = i64::try_from(installation)
            .map_err(|_| StoreError(format!("installation id {installation} is out of range")))?;
        let (used, left): (i32, f64) = sqlx::query_as(
            "INSERT INTO kpath_posting AS p (installation, window_start, used) VALUES ($1, now(), 1)
             ON CONFLICT (installation) DO UPDATE SET
                window_start = CASE WHEN p.window_start <= now() - interval '1 minute' THEN now() ELSE p.window_start END,
                used = CASE WHEN p.window_start <= now() - interval '1 minute' THEN 1 ELSE p.used + 1 END
             RETURNING used, EXTRACT(EPOCH FROM (window_start + interval '1 minute' - now()))::float8",
        )
        .bind(installation)
        .fetch_one(&self.pool)
        .await
        .map_err(|e| failed("cannot count a GitHub request", e))?;
        let over = u32::try_from(used).unwrap_or(u32::MAX) > per_minute.max(1);
        Ok(over.then(|| Duration::from_secs_f64(left.clamp(0.0, 60.0))))
    }

    async fn ping(&self) -> Result<(), StoreError> {
        sqlx::query("SELECT 1").execute(&self.pool).await.map_err(|e| failed("the database does not answer", e))?;
        Ok(())
    }

    async fn prune(&self, age: Duration) -> Result<(), StoreError> {
        let age = millis(age);
        for table in ["kpath_deliveries", "kpath_reviewed"] {
            sqlx::query(&format!("DELETE FROM {table} WHERE seen_at < now() - $1 * interval '1 millisecond'"))
                .bind(age)
                .execute(&self.pool)
                .await
                .map_err(|e| failed("cannot prune old records", e))?;
        }
        Ok(())
    }

    async fn orphans(&self) -> Vec<Claimed> {
        Vec::new()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn passwords_are_not_repeated_in_errors() {
        assert_eq!(
            redact_url("error connecting to postgres://kpath:hunter2@db/kpath", "postgres://kpath:hunter2@db/kpath"),
            "error connecting to postgres://kpath:***@db/kpath"
        );
        assert_eq!(redact_url("no password", "postgres://db/kpath"), "no password");
    }
}
