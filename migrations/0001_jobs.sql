-- kpath serve's shared state (src/app/store/postgres.rs). Applied at start-up by every replica; sqlx's
-- migrator holds an advisory lock meanwhile, so replicas starting together apply it once.

-- One row per job. A lane (a pull request, a head, a comment) has at most one waiting and one running job.
CREATE TABLE kpath_jobs (
    id          BIGSERIAL PRIMARY KEY,
    repo        TEXT NOT NULL,
    lane        TEXT NOT NULL,
    state       TEXT NOT NULL CHECK (state IN ('waiting', 'running')),
    head        TEXT,
    event       TEXT NOT NULL,
    check_run   BIGINT,
    owner       TEXT,
    lease_until TIMESTAMPTZ,
    cancel      BOOLEAN NOT NULL DEFAULT FALSE,
    attempts    INTEGER NOT NULL DEFAULT 0,
    created_at  TIMESTAMPTZ NOT NULL DEFAULT now()
);
CREATE UNIQUE INDEX kpath_jobs_one_waiting ON kpath_jobs (repo, lane) WHERE state = 'waiting';
CREATE UNIQUE INDEX kpath_jobs_one_running ON kpath_jobs (repo, lane) WHERE state = 'running';
CREATE INDEX kpath_jobs_by_lease ON kpath_jobs (lease_until) WHERE state = 'running';

-- Webhook deliveries already stored (GitHub redelivers on timeouts and on request).
CREATE TABLE kpath_deliveries (
    id      TEXT PRIMARY KEY,
    seen_at TIMESTAMPTZ NOT NULL DEFAULT now()
);

-- Heads taken for review, so one push announced by several events is reviewed once.
CREATE TABLE kpath_reviewed (
    repo    TEXT NOT NULL,
    head    TEXT NOT NULL,
    seen_at TIMESTAMPTZ NOT NULL DEFAULT now(),
    PRIMARY KEY (repo, head)
);

-- Content-creating requests per installation in the current minute, shared by every replica.
CREATE TABLE kpath_posting (
    installation BIGINT PRIMARY KEY,
    window_start TIMESTAMPTZ NOT NULL,
    used         INTEGER NOT NULL
);
