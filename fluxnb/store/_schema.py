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

STEP_STATS = """            SELECT r.workflow,
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
            GROUP BY r.workflow, e.step"""

MIGRATIONS += (
    Migration(
        4,
        "step_stats view",
        (f"CREATE VIEW step_stats AS\n{STEP_STATS}",),
    ),
)

#: Views over the tables, defined once: the migration creates them in the store, and a
#: namespace-scoped query (docs/tenants.md) creates them over that namespace's rows.
#: Latency and failure figures of a group of event rows (``e``), shared by the SLA views:
#: executions (final rows), attempts that ran, p50/p95/p99 seconds, error and retry rates.
_ATTEMPT_STATS = """count(*) FILTER (WHERE e.final) AS executions,
    count(*) FILTER (WHERE e.started_at IS NOT NULL) AS attempts,
    quantile_cont(e.duration_s, 0.5) AS p50_s,
    quantile_cont(e.duration_s, 0.95) AS p95_s,
    quantile_cont(e.duration_s, 0.99) AS p99_s,
    count(*) FILTER (WHERE e.final AND e.status = 'failed')
        / greatest(count(*) FILTER (WHERE e.final), 1) AS error_rate,
    count(*) FILTER (WHERE e.attempt > 1)
        / greatest(count(*) FILTER (WHERE e.final), 1) AS retry_rate"""

SLA_VIEWS: dict[str, str] = {
    # one row per (workflow, step): latency of attempts that ran, and how often they failed
    "sla_steps": f"""
        SELECT r.workflow,
               e.step,
               {_ATTEMPT_STATS}
        FROM events e JOIN runs r USING (run_id)
        GROUP BY r.workflow, e.step""",
    # one row per agent (a step id names its agent, across workflows), with the time its
    # circuit spent open (closed intervals: open until the next state change)
    "sla_agents": f"""
        WITH attempts AS (
            SELECT e.step AS agent,
                   {_ATTEMPT_STATS}
            FROM events e GROUP BY e.step),
        changes AS (
            SELECT agent, to_state, occurred_at,
                   lead(occurred_at) OVER (PARTITION BY agent ORDER BY occurred_at) AS next_at
            FROM circuit_events),
        opened AS (
            SELECT agent,
                   sum(date_diff('microsecond', occurred_at, next_at)) / 1e6 AS breaker_open_s,
                   count(*) AS breaker_opened
            FROM changes WHERE to_state = 'open' AND next_at IS NOT NULL GROUP BY agent)
        SELECT a.*, coalesce(o.breaker_open_s, 0.0) AS breaker_open_s,
               coalesce(o.breaker_opened, 0) AS breaker_opened
        FROM attempts a LEFT JOIN opened o USING (agent)""",
    # one row per run: FluxRoute's /sla snapshot, per run
    "sla_runs": """
        SELECT r.run_id, r.workflow, r.tenant, r.namespace, r.status, r.started_at,
               r.duration_s,
               count(*) FILTER (WHERE e.final) AS steps_done,
               count(*) FILTER (WHERE e.started_at IS NOT NULL) AS attempts,
               count(*) FILTER (WHERE e.attempt > 1) AS retries,
               count(*) FILTER (WHERE e.final AND e.status = 'failed') AS failed_steps,
               sum(e.duration_s) AS compute_s
        FROM runs r LEFT JOIN events e USING (run_id)
        GROUP BY ALL""",
}

MIGRATIONS += (
    Migration(
        5,
        "tenants, usage, rate cards, invoices, audit, SLA views",
        (
            """CREATE TABLE tenants (
                tenant VARCHAR PRIMARY KEY,
                display_name VARCHAR,
                created_at TIMESTAMP NOT NULL,
                created_by VARCHAR
            )""",
            """CREATE TABLE usage (
                event_id VARCHAR PRIMARY KEY,
                tenant VARCHAR NOT NULL,
                namespace VARCHAR NOT NULL,
                unit VARCHAR NOT NULL,
                quantity DECIMAL(38, 9) NOT NULL,
                occurred_at TIMESTAMP NOT NULL,
                source VARCHAR NOT NULL,
                run_id VARCHAR,
                workflow VARCHAR,
                step VARCHAR,
                attempt INTEGER,
                reason VARCHAR,
                corrects VARCHAR,
                actor VARCHAR,
                recorded_at TIMESTAMP NOT NULL
            )""",
            """CREATE TABLE rate_cards (
                card_id VARCHAR PRIMARY KEY,
                tenant VARCHAR,
                name VARCHAR NOT NULL,
                version INTEGER NOT NULL,
                currency VARCHAR NOT NULL,
                minor_unit INTEGER NOT NULL,
                effective_from DATE NOT NULL,
                created_at TIMESTAMP NOT NULL,
                created_by VARCHAR,
                card VARCHAR NOT NULL
            )""",
            """CREATE TABLE rate_card_prices (
                card_id VARCHAR NOT NULL,
                unit VARCHAR NOT NULL,
                per DECIMAL(38, 9) NOT NULL,
                tier INTEGER NOT NULL,
                up_to DECIMAL(38, 9),
                price DECIMAL(38, 9) NOT NULL
            )""",
            """CREATE TABLE invoices (
                invoice_id VARCHAR PRIMARY KEY,
                tenant VARCHAR NOT NULL,
                namespace VARCHAR,
                period VARCHAR NOT NULL,
                period_start TIMESTAMP NOT NULL,
                period_end TIMESTAMP NOT NULL,
                currency VARCHAR NOT NULL,
                minor_unit INTEGER NOT NULL,
                subtotal DECIMAL(38, 9) NOT NULL,
                total DECIMAL(38, 9) NOT NULL,
                state VARCHAR NOT NULL,
                issued_at TIMESTAMP,
                voided_at TIMESTAMP,
                void_reason VARCHAR,
                usage_events BIGINT NOT NULL
            )""",
            """CREATE TABLE invoice_lines (
                invoice_id VARCHAR NOT NULL,
                line INTEGER NOT NULL,
                card_id VARCHAR NOT NULL,
                unit VARCHAR NOT NULL,
                quantity DECIMAL(38, 9) NOT NULL,
                per DECIMAL(38, 9) NOT NULL,
                unit_price DECIMAL(38, 9),
                tiers VARCHAR NOT NULL,
                amount DECIMAL(38, 9) NOT NULL,
                note VARCHAR
            )""",
            """CREATE TABLE audit (
                occurred_at TIMESTAMP NOT NULL,
                role VARCHAR NOT NULL,
                tenant VARCHAR,
                namespace VARCHAR,
                action VARCHAR NOT NULL,
                target VARCHAR,
                outcome VARCHAR NOT NULL,
                detail VARCHAR,
                host VARCHAR,
                pid INTEGER
            )""",
            *(f"CREATE VIEW {name} AS {sql}" for name, sql in SLA_VIEWS.items()),
        ),
    ),
)

MIGRATIONS += (
    Migration(
        6,
        "the store's signing key for recorded pickles; idempotency keys scoped per tenant, "
        "namespace and unit",
        (
            """CREATE TABLE fluxnb_secrets (
                name VARCHAR PRIMARY KEY,
                value BLOB NOT NULL
            )""",
            # a caller's idempotency key counted once per (tenant, namespace, unit)
            """UPDATE usage
               SET event_id = 'key:' || tenant || ':' || namespace || ':' || unit || ':'
                              || event_id
               WHERE source <> 'auto' AND event_id NOT LIKE 'custom:%'
                 AND event_id NOT LIKE 'key:%'""",
        ),
    ),
)

MIGRATIONS += (
    Migration(
        7,
        "a resumed run's duration_s is the time it ran, not the time since it first started",
        (
            "ALTER TABLE runs ADD COLUMN resumed_at TIMESTAMP",
            "ALTER TABLE runs ADD COLUMN ran_before_s DOUBLE",
        ),
    ),
)

MIGRATIONS += (
    Migration(
        8,
        "the control plane: a workflow registry with versions, the version each run ran, "
        "and who (the Jupyter user) each audit row is about",
        (
            "ALTER TABLE audit ADD COLUMN user_name VARCHAR",
            """CREATE TABLE workflows (
                namespace VARCHAR NOT NULL,
                name VARCHAR NOT NULL,
                version INTEGER NOT NULL,
                kind VARCHAR NOT NULL,
                manifest VARCHAR NOT NULL,
                manifest_hash VARCHAR NOT NULL,
                created_at TIMESTAMP NOT NULL,
                created_by VARCHAR,
                deleted_at TIMESTAMP,
                PRIMARY KEY (namespace, name, version)
            )""",
            """CREATE TABLE workflow_runs (
                run_id VARCHAR PRIMARY KEY,
                namespace VARCHAR NOT NULL,
                workflow VARCHAR NOT NULL,
                version INTEGER NOT NULL,
                submitted_by VARCHAR,
                submitted_at TIMESTAMP NOT NULL
            )""",
        ),
    ),
)


def _seed_llm_prices() -> str:
    """The INSERT of the price rows shipped in ``llm_prices.csv`` (the table's seed)."""
    import csv
    from pathlib import Path

    def lit(v: str) -> str:
        return "NULL" if v == "" else "'" + v.replace("'", "''") + "'"

    with open(Path(__file__).with_name("llm_prices.csv"), newline="") as f:
        rows = [", ".join(map(lit, r.values())) + ", 'seed'" for r in csv.DictReader(f)]
    return "INSERT INTO llm_prices VALUES\n(" + "),\n(".join(rows) + ")"


MIGRATIONS += (
    Migration(
        9,
        "LLM calls (one row per HTTP attempt, tokens and cost) and the LLM price table",
        (
            """CREATE TABLE llm_prices (
                provider VARCHAR NOT NULL,
                model VARCHAR NOT NULL,
                input_per_m DECIMAL(38, 9),
                output_per_m DECIMAL(38, 9),
                cached_per_m DECIMAL(38, 9),
                effective_from DATE NOT NULL,
                context_window INTEGER,
                features VARCHAR,
                price_as VARCHAR,
                source VARCHAR NOT NULL DEFAULT 'user'
            )""",
            _seed_llm_prices(),
            """CREATE TABLE llm_calls (
                run_id VARCHAR,
                step VARCHAR,
                attempt INTEGER NOT NULL,
                tenant VARCHAR NOT NULL,
                provider VARCHAR NOT NULL,
                model VARCHAR NOT NULL,
                http_status INTEGER,
                outcome VARCHAR NOT NULL,
                prompt_tokens BIGINT,
                cached_tokens BIGINT,
                completion_tokens BIGINT,
                reasoning_tokens BIGINT,
                cost DECIMAL(38, 9),
                provider_cost DECIMAL(38, 9),
                cost_status VARCHAR NOT NULL,
                ttft_ms DOUBLE,
                latency_ms DOUBLE,
                namespace VARCHAR,
                step_attempt INTEGER,
                call INTEGER,
                candidate INTEGER,
                candidates VARCHAR,
                price_as VARCHAR,
                error VARCHAR,
                started_at TIMESTAMP NOT NULL,
                output VARCHAR
            )""",
        ),
    ),
)

#: One row per step per run that ran with caching on: its cache key, what was decided
#: (``hit``: a recorded output reused; ``miss`` / ``refresh``: it ran; ``off``: not cached)
#: and why, in words; people read the ``cache_decisions`` view (docs/caching.md).
CACHE_DECISIONS = """
        SELECT c.run_id, r.workflow, coalesce(r.namespace, 'default') AS namespace, c.step,
               c.decision, c.reason, c.cache_key, c.source_run_id, c.large_output,
               c.recorded_at
        FROM cache_entries c JOIN runs r USING (run_id)"""

#: Columns of a ``cache_entries`` row, in order (they travel in segments like events).
CACHE_COLUMNS: tuple[str, ...] = (
    "run_id",
    "seq",
    "step",
    "attempt",
    "cache_key",
    "decision",
    "reason",
    "fingerprint",
    "source_run_id",
    "large_output",
    "large_sha",
    "recorded_at",  # epoch microseconds, UTC
)

MIGRATIONS += (
    Migration(
        10,
        "incremental runs: a cache key and decision per step and run, the cache_decisions view",
        (
            """CREATE TABLE cache_entries (
                run_id VARCHAR NOT NULL,
                seq INTEGER NOT NULL,
                step VARCHAR NOT NULL,
                attempt INTEGER NOT NULL,
                cache_key VARCHAR,
                decision VARCHAR NOT NULL,
                reason VARCHAR,
                fingerprint VARCHAR,
                source_run_id VARCHAR,
                large_output VARCHAR,
                large_sha VARCHAR,
                recorded_at TIMESTAMP NOT NULL
            )""",
            f"CREATE VIEW cache_decisions AS {CACHE_DECISIONS}",
        ),
    ),
)

MIGRATIONS += (
    Migration(
        11,
        "triggers: registered triggers, their firings (one claimed key each) and the event bus",
        (
            """CREATE TABLE triggers (
                trigger_id VARCHAR PRIMARY KEY,
                workflow VARCHAR NOT NULL,
                namespace VARCHAR,
                kind VARCHAR NOT NULL,
                spec VARCHAR NOT NULL,
                manifest VARCHAR,
                paused BOOLEAN NOT NULL DEFAULT false,
                since TIMESTAMP NOT NULL,
                failures INTEGER NOT NULL DEFAULT 0,
                backoff_until TIMESTAMP,
                last_error VARCHAR,
                created_at TIMESTAMP NOT NULL,
                updated_at TIMESTAMP NOT NULL,
                -- whom its runs bill (the registering session's tenant; router.tenant wins)
                tenant VARCHAR,
                -- refused webhook deliveries, all of them (only the first few a minute
                -- have a firings row: an anonymous caller cannot grow the store)
                rejections BIGINT NOT NULL DEFAULT 0
            )""",
            # claim: the firing's key when it owns that key, NULL for a refused duplicate or
            # a rejected request (recorded too); UNIQUE makes a key fire at most once
            """CREATE TABLE firings (
                key VARCHAR NOT NULL,
                claim VARCHAR UNIQUE,
                trigger VARCHAR NOT NULL,
                workflow VARCHAR,
                scheduled_for TIMESTAMP,
                fired_at TIMESTAMP NOT NULL,
                run_id VARCHAR,
                outcome VARCHAR NOT NULL,
                skipped_because VARCHAR,
                payload VARCHAR,
                ended_at TIMESTAMP,
                host VARCHAR,
                pid INTEGER
            )""",
            """CREATE TABLE bus_events (
                event_id VARCHAR PRIMARY KEY,
                name VARCHAR NOT NULL,
                data VARCHAR,
                namespace VARCHAR,
                emitted_at TIMESTAMP NOT NULL,
                source VARCHAR NOT NULL,
                run_id VARCHAR,
                step VARCHAR
            )""",
        ),
    ),
)

#: A per-item step's firings numbered as items (0, 1, ...): the n-th firing of a step in
#: a run (by its firing number ``seq``, attempts folded) is its n-th item (docs/streams.md).
STREAM_ITEMS = """            SELECT run_id, step, seq,
                   row_number() OVER (PARTITION BY run_id, step ORDER BY seq) - 1 AS item,
                   status, attempt AS attempts, duration_s
            FROM events
            WHERE final AND step NOT LIKE 'put:%' AND step NOT LIKE 'back:%'"""

MIGRATIONS += (
    Migration(
        12,
        "stream_items: the firings of every step numbered as the items it handled",
        (f"CREATE VIEW stream_items AS {STREAM_ITEMS}",),
    ),
)

#: The newest migration (blocks are added by parallel work, not always in order).
SCHEMA_VERSION = max(m.version for m in MIGRATIONS)

#: A ``runs`` row's ``duration_s``: the time the run ran, in all its executions (a resumed
#: run's earlier executions, ``ran_before_s``, plus this one's, from ``resumed_at``).
RUN_DURATION = (
    "coalesce(ran_before_s, 0) + "
    "date_diff('microsecond', coalesce(resumed_at, started_at), ended_at) / 1e6"
)

#: Every view, by name, with its SELECT.
VIEWS: dict[str, str] = {
    "step_stats": STEP_STATS,
    **SLA_VIEWS,
    "cache_decisions": CACHE_DECISIONS,
    "stream_items": STREAM_ITEMS,
}

#: Columns of one event row (one attempt of one step), in the order the engine fills them.
EVENT_COLUMNS: tuple[str, ...] = (
    "run_id",
    "seq",
    "step",
    "attempt",
    "status",
    "final",
    "started_at",  # epoch microseconds, UTC (None: never started)
    "ended_at",
    "duration_s",
    "delay_s",  # seconds waited before this attempt (backoff)
    "error_type",
    "error_message",
    "traceback",
    "executor",  # 'local', 'dask', ... (None: never started)
    "worker",  # where it ran, when the executor knows (a Dask worker's address)
)
#: The engine appends the attempt's raw output (or NO_OUTPUT) after these columns; a
#: recorder turns it into the stored ``OUTPUT_COLUMNS``.
OUTPUT_COLUMNS: tuple[str, ...] = (
    "output_format",
    "output_json",
    "output_pickle",
    "output_digest",
    "output_size",
)

#: One circuit breaker state change.
CIRCUIT_COLUMNS: tuple[str, ...] = (
    "occurred_at",  # epoch microseconds, UTC
    "agent",
    "from_state",
    "to_state",
    "reason",
    "failures",
    "run_id",
    "step",
)

#: Columns of a ``usage`` row (one metered quantity; ``event_id`` is the idempotency key).
USAGE_COLUMNS: tuple[str, ...] = (
    "event_id",
    "tenant",
    "namespace",
    "unit",
    "quantity",  # exact decimal text (at most 9 places); DECIMAL(38, 9) in the table
    "occurred_at",  # epoch microseconds, UTC
    "source",  # auto | custom | correction
    "run_id",
    "workflow",
    "step",
    "attempt",
    "reason",
    "corrects",
    "actor",
    "recorded_at",
)

#: Columns of an ``llm_calls`` row (one HTTP attempt of an LLM call; docs/llm.md).
LLM_CALL_COLUMNS: tuple[str, ...] = (
    "run_id",
    "step",
    "attempt",  # the HTTP attempt within the call: 1, 2, ... across every candidate
    "tenant",
    "provider",
    "model",
    "http_status",  # None: no response (connection error, timeout, a stream cut)
    "outcome",  # ok | retry | failover | failed | budget
    "prompt_tokens",
    "cached_tokens",
    "completion_tokens",
    "reasoning_tokens",
    "cost",  # exact decimal text computed from llm_prices (None: unpriced)
    "provider_cost",  # the cost the provider reported, if any
    "cost_status",  # priced | unpriced | none (no tokens used)
    "ttft_ms",  # time to the first token (streaming)
    "latency_ms",
    "namespace",
    "step_attempt",  # the step's own attempt number
    "call",  # which LLM call of that step attempt: 1, 2, ...
    "candidate",  # the candidate's place in the resolved order: 1, 2, ...
    "candidates",  # the resolved order, 'provider/model' joined by ','
    "price_as",  # the price row used when the model is priced as another
    "error",
    "started_at",  # epoch microseconds, UTC
    "output",  # the answer's text (ok rows): what a replay returns
)

#: Columns of an ``audit`` row.
AUDIT_COLUMNS: tuple[str, ...] = (
    "occurred_at",
    "role",
    "tenant",
    "namespace",
    "action",
    "target",
    "outcome",  # allowed | denied
    "detail",
    "host",
    "pid",
    "user_name",  # who was authenticated (the control plane's Jupyter user), else None
)

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
    "resumed_at",
    "ran_before_s",
)
