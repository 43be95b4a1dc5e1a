"""The store's schema, versioned, with the migrations that build it.

A migration is applied once, in a transaction, when a process first opens a store whose
``fluxnb_schema`` version is older. Never edit a released migration: add a new one.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Migration:
    version: int
    description: str
    statements: tuple[str, ...]


MIGRATIONS: tuple[Migration, ...] = (
    Migration(
        1,
        "runs and events",
        (
            """CREATE TABLE runs (
                run_id VARCHAR PRIMARY KEY,
                workflow VARCHAR NOT NULL,
                namespace VARCHAR,
                tenant VARCHAR,
                status VARCHAR NOT NULL,
                started_at TIMESTAMP NOT NULL,
                ended_at TIMESTAMP,
                duration_s DOUBLE,
                steps INTEGER,
                manifest VARCHAR,
                manifest_hash VARCHAR,
                error VARCHAR,
                host VARCHAR,
                pid INTEGER
            )""",
            """CREATE TABLE events (
                run_id VARCHAR NOT NULL,
                seq INTEGER NOT NULL,
                step VARCHAR NOT NULL,
                attempt INTEGER NOT NULL,
                status VARCHAR NOT NULL,
                final BOOLEAN NOT NULL,
                started_at TIMESTAMP,
                ended_at TIMESTAMP,
                duration_s DOUBLE,
                delay_s DOUBLE,
                error_type VARCHAR,
                error_message VARCHAR,
                traceback VARCHAR
            )""",
            """CREATE TABLE fluxnb_segments (
                name VARCHAR PRIMARY KEY,
                ingested_at TIMESTAMP NOT NULL,
                rows BIGINT NOT NULL
            )""",
        ),
    ),
)

MIGRATIONS += (
    Migration(
        2,
        "recorded outputs, seeds, resumes, circuit breaker events",
        (
            "ALTER TABLE events ADD COLUMN output_format VARCHAR",
            "ALTER TABLE events ADD COLUMN output_json VARCHAR",
            "ALTER TABLE events ADD COLUMN output_pickle BLOB",
            "ALTER TABLE events ADD COLUMN output_digest VARCHAR",
            "ALTER TABLE events ADD COLUMN output_size BIGINT",
            "ALTER TABLE runs ADD COLUMN seed BIGINT",
            "ALTER TABLE runs ADD COLUMN resumed INTEGER DEFAULT 0",
            """CREATE TABLE circuit_events (
                occurred_at TIMESTAMP NOT NULL,
                agent VARCHAR NOT NULL,
                from_state VARCHAR NOT NULL,
                to_state VARCHAR NOT NULL,
                reason VARCHAR,
                failures INTEGER,
                run_id VARCHAR,
                step VARCHAR
            )""",
        ),
    ),
)

MIGRATIONS += (
    Migration(
        3,
        "where each attempt ran",
        (
            "ALTER TABLE events ADD COLUMN executor VARCHAR",
            "ALTER TABLE events ADD COLUMN worker VARCHAR",
        ),
    ),
)

MIGRATIONS += (
    Migration(
        4,
        "step_stats view",
        (
            """CREATE VIEW step_stats AS
            SELECT r.workflow,
                   e.step,
                   count(*) FILTER (WHERE e.final) AS runs,
                   count(*) FILTER (WHERE e.attempt > 0) AS attempts,
                   count(*) FILTER (WHERE e.status = 'failed') AS failures,
                   count(*) FILTER (WHERE e.final AND e.status = 'failed') AS failed_runs,
                   quantile_cont(e.duration_s, 0.5) AS p50_s,
                   quantile_cont(e.duration_s, 0.95) AS p95_s,
                   quantile_cont(e.duration_s, 0.99) AS p99_s,
                   avg(e.duration_s) AS mean_s
            FROM events e JOIN runs r USING (run_id)
            GROUP BY r.workflow, e.step""",
        ),
    ),
)

SCHEMA_VERSION = MIGRATIONS[-1].version

#: Columns the ``runs`` rows carry in segments (``duration_s`` is derived on load).
RUN_COLUMNS: tuple[str, ...] = (
    "run_id",
    "workflow",
    "status",
    "started_at",
    "ended_at",
    "namespace",
    "tenant",
    "steps",
    "manifest",
    "manifest_hash",
    "error",
    "host",
    "pid",
    "seed",
    "resumed",
)
