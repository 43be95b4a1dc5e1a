"""LLM steps against a real local OpenAI-compatible server (fluxnb.llms.FakeLLMServer on
127.0.0.1): every scenario asserts the attempts, the chosen candidate, the llm_calls and
events rows, the usage rows and the invoice total. No test touches the network."""

from __future__ import annotations

import asyncio
import os
import sys
import warnings
from decimal import ROUND_HALF_EVEN, Decimal
from pathlib import Path
from typing import Any

import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

import fluxnb
from fluxnb.llms import FakeLLMServer, LLMRetry, allm, reply
from fluxnb.llms._prices import PriceBook, cost
from fluxnb.llms._providers import read_providers
from fluxnb.llms._routing import resolve
from fluxnb.spec._llm_spec import SLOT, render

KEY = "sk-test-SECRET-7f3a9c"  # a key that must never be written anywhere
CARD = """
rate_card:
  name: llm
  currency: USD
  effective_from: 2026-01-01
  prices:
    - {unit: llm_prompt_tokens, price: "0.01"}
    - {unit: llm_completion_tokens, price: "0.03"}
    - {unit: llm_cost_usd, price: "1.20"}
"""


@pytest.fixture()
def server() -> Any:
    with FakeLLMServer() as srv:
        yield srv
    fluxnb.breakers().clear()


@pytest.fixture()
def env(server: FakeLLMServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Any:
    """A store file with tenant acme and its rate card, and two providers on the server."""
    monkeypatch.setenv("FAKE_LLM_KEY", KEY)
    store = fluxnb.Store(tmp_path / "llm.duckdb")
    fluxnb.create_tenant("acme", store=store)
    fluxnb.set_rate_card(CARD, "acme", store=store)
    providers = [
        {"name": "openai", "base_url": server.url, "api_key_env": "FAKE_LLM_KEY"},
        {"name": "backup", "base_url": server.url, "api_key_env": "FAKE_LLM_KEY",
         "price_as": {"gpt-4o-mini": "openai/gpt-4o-mini"}},
    ]  # fmt: skip
    return store, providers


class Sleeps:
    """An injected sleep: records each wait, waits no time."""

    def __init__(self) -> None:
        self.waits: list[float] = []

    async def __call__(self, seconds: float) -> None:
        self.waits.append(seconds)


def run_asking(store: Any, providers: Any, model: Any, sleeps: Any = None, **opts: Any) -> Any:
    async def ask(ctx: Any) -> Any:
        return await allm(
            "Say hello to the world",
            model=model,
            providers=providers,
            ctx=ctx,
            sleep=sleeps or Sleeps(),
            **opts,
        )

    wf = fluxnb.Workflow("asker")
    wf.add("ask", ask)
    return fluxnb.run(wf, store=store, tenant="acme")


def calls(store: Any, run_id: str) -> list[dict[str, Any]]:
    df = store.sql(
        f"SELECT * FROM llm_calls WHERE run_id = '{run_id}' ORDER BY started_at, attempt"
    )
    return df.to_dict("records")


def usage(store: Any, run_id: str | None) -> dict[str, Decimal]:
    """Usage by unit of one run (None: of every run of tenant acme)."""
    where = f"run_id = '{run_id}'" if run_id else "tenant = 'acme'"
    df = store.sql(f"SELECT unit, sum(quantity) AS q FROM usage WHERE {where} GROUP BY unit")
    return {r["unit"]: Decimal(str(r["q"])) for r in df.to_dict("records")}


def invoice_total(store: Any) -> Decimal:
    from datetime import UTC, datetime

    return fluxnb.invoice("acme", datetime.now(UTC).strftime("%Y-%m"), store=store).total


def books_agree(store: Any, r: Any) -> None:
    """The trace, the usage and the invoice tell one story: one events row per step
    attempt ending as the run did, the usage rows' LLM tokens and cost equal to the sum of
    the llm_calls rows, and the invoice priced from that usage."""
    [event] = store.sql(f"SELECT status FROM events WHERE run_id = '{r.run_id}'").to_dict("records")
    assert event["status"] == ("succeeded" if r.status == "succeeded" else "failed")
    rows = calls(store, r.run_id)
    u = usage(store, r.run_id)
    for unit, col in (("llm_prompt_tokens", "prompt_tokens"),
                      ("llm_completion_tokens", "completion_tokens")):  # fmt: skip
        assert u.get(unit, Decimal(0)) == sum(x[col] or 0 for x in rows)
    costs = [Decimal(str(x["cost"])) for x in rows if x["cost"] is not None]
    assert u.get("llm_cost_usd", Decimal(0)) == sum(costs, Decimal(0))
    assert invoice_total(store) == expected_total(usage(store, None))  # every run of acme


def expected_total(u: dict[str, Decimal]) -> Decimal:
    """The card's price of each LLM unit, each line rounded half-even to the cent as an
    invoice line is (the automatic units are not on the card: they cost nothing)."""
    lines = (
        u.get("llm_prompt_tokens", Decimal(0)) * Decimal("0.01"),
        u.get("llm_completion_tokens", Decimal(0)) * Decimal("0.03"),
        u.get("llm_cost_usd", Decimal(0)) * Decimal("1.20"),
    )
    return sum((x.quantize(Decimal("0.01"), rounding=ROUND_HALF_EVEN) for x in lines), Decimal(0))


def mini_cost(prompt: int, completion: int) -> Decimal:
    price, _ = PriceBook().resolve("openai", "gpt-4o-mini")
    c = cost(price, prompt, 0, completion)
    assert c is not None
    return c


# ---------------------------------------------------------------------- the scenarios
def test_a_json_answer_is_one_attempt_recorded_metered_and_invoiced(env: Any, server: Any) -> None:
    store, providers = env
    server.script("gpt-4o-mini", reply("Hello, world!", prompt_tokens=1200, completion_tokens=300))
    r = run_asking(store, providers, "openai/gpt-4o-mini")
    assert r.status == "succeeded" and r.outputs["ask"] == "Hello, world!"
    [row] = calls(store, r.run_id)
    assert (row["provider"], row["model"], row["http_status"], row["outcome"]) == (
        "openai",
        "gpt-4o-mini",
        200,
        "ok",
    )
    assert (row["prompt_tokens"], row["completion_tokens"], row["tenant"]) == (1200, 300, "acme")
    assert Decimal(str(row["cost"])) == mini_cost(1200, 300) and row["cost_status"] == "priced"
    assert row["candidates"] == "openai/gpt-4o-mini" and row["output"] == "Hello, world!"
    u = usage(store, r.run_id)
    assert u["llm_prompt_tokens"] == 1200 and u["llm_completion_tokens"] == 300
    assert u["llm_cost_usd"] == mini_cost(1200, 300)
    assert invoice_total(store) == expected_total(u) > 0
    [event] = store.sql(f"SELECT * FROM events WHERE run_id = '{r.run_id}'").to_dict("records")
    assert event["status"] == "succeeded" and event["attempt"] == 1
    books_agree(store, r)


@pytest.mark.parametrize("usage_choices", ["[]", "null"])
def test_a_stream_reads_the_usage_chunk_whatever_its_choices(
    env: Any, server: Any, usage_choices: str
) -> None:
    store, providers = env
    server.script(
        "gpt-4o-mini",
        reply(
            "one two three four", usage_choices=usage_choices, prompt_tokens=40, completion_tokens=4
        ),
    )
    r = run_asking(store, providers, "openai/gpt-4o-mini", stream=True)
    assert r.outputs["ask"] == "one two three four"
    assert server.requests[-1]["body"]["stream_options"] == {"include_usage": True}
    [row] = calls(store, r.run_id)
    assert (row["prompt_tokens"], row["completion_tokens"]) == (40, 4)
    assert row["ttft_ms"] is not None and row["ttft_ms"] <= row["latency_ms"]
    u = usage(store, r.run_id)
    assert u["llm_completion_tokens"] == 4 and invoice_total(store) == expected_total(u)
    books_agree(store, r)


def test_429_waits_its_retry_after_then_retries_the_same_candidate(env: Any, server: Any) -> None:
    store, providers = env
    server.script("gpt-4o-mini", reply(status=429, retry_after=2.5), reply("fine"))
    sleeps = Sleeps()
    r = run_asking(store, providers, ["openai/gpt-4o-mini", "backup/gpt-4o-mini"], sleeps)
    assert r.outputs["ask"] == "fine" and sleeps.waits == [2.5]
    rows = calls(store, r.run_id)
    assert [(x["attempt"], x["provider"], x["http_status"], x["outcome"]) for x in rows] == [
        (1, "openai", 429, "retry"),
        (2, "openai", 200, "ok"),
    ]
    assert rows[0]["cost_status"] == "none" and rows[0]["prompt_tokens"] is None
    u = usage(store, r.run_id)
    assert u["llm_cost_usd"] == Decimal(str(rows[1]["cost"]))  # the failed try costs nothing
    assert invoice_total(store) == expected_total(u)
    books_agree(store, r)


def test_a_retry_after_past_the_cap_moves_to_the_next_candidate(env: Any, server: Any) -> None:
    store, providers = env
    server.script("gpt-4o-mini", reply(status=429, retry_after=120))
    sleeps = Sleeps()
    r = run_asking(
        store,
        providers,
        ["openai/gpt-4o-mini", "backup/gpt-4o-mini"],
        sleeps,
        retry=LLMRetry(retry_after_cap=30),
    )
    assert sleeps.waits == []
    rows = calls(store, r.run_id)
    assert [(x["provider"], x["outcome"], x["candidate"]) for x in rows] == [
        ("openai", "failover", 1),
        ("backup", "ok", 2),
    ]
    books_agree(store, r)


def test_500_twice_then_200_backs_off_exponentially_with_jitter(env: Any, server: Any) -> None:
    store, providers = env
    server.script("gpt-4o-mini", reply(status=500), reply(status=502), reply("third time"))
    sleeps = Sleeps()
    retry = LLMRetry(initial_delay=1.0, max_delay=10.0)
    r = run_asking(store, providers, "openai/gpt-4o-mini", sleeps, retry=retry)
    assert r.outputs["ask"] == "third time"
    assert len(sleeps.waits) == 2
    assert 0 <= sleeps.waits[0] <= 1.0 and 0 <= sleeps.waits[1] <= 2.0  # full jitter
    rows = calls(store, r.run_id)
    assert [(x["http_status"], x["outcome"]) for x in rows] == [
        (500, "retry"),
        (502, "retry"),
        (200, "ok"),
    ]
    # the same run again draws the same jitter: backoff is deterministic per call
    server.script("gpt-4o-mini", reply(status=500), reply(status=502), reply("again"))
    again = Sleeps()
    run_asking(store, providers, "openai/gpt-4o-mini", again, retry=retry)
    assert again.waits == sleeps.waits
    u = usage(store, r.run_id)
    assert u["llm_completion_tokens"] == 2  # "third time": only the answer is metered
    books_agree(store, r)


def test_a_stall_past_the_read_timeout_is_retried(env: Any, server: Any) -> None:
    store, providers = env
    server.script("gpt-4o-mini", reply(stall=5.0), reply("awake"))
    sleeps = Sleeps()
    r = run_asking(store, providers, "openai/gpt-4o-mini", sleeps, retry=LLMRetry(timeout=0.3))
    assert r.outputs["ask"] == "awake"
    rows = calls(store, r.run_id)
    assert [(x["http_status"], x["outcome"]) for x in rows] == [(None, "retry"), (200, "ok")]
    assert "Timeout" in rows[0]["error"] and rows[0]["latency_ms"] >= 250
    assert invoice_total(store) == expected_total(usage(store, r.run_id))
    books_agree(store, r)


def test_a_stream_cut_after_its_first_token_fails_without_failover(env: Any, server: Any) -> None:
    store, providers = env
    server.script("gpt-4o-mini", reply("a b c d e f", cut_after=3))
    r = run_asking(store, providers, ["openai/gpt-4o-mini", "backup/gpt-4o-mini"], stream=True)
    assert r.status == "failed"
    err = r.steps["ask"].error
    assert err is not None and err.type == "LLMError" and "no failover" in err.message
    assert [x["model"] for x in server.requests] == ["gpt-4o-mini"]  # backup never asked
    [row] = calls(store, r.run_id)
    assert (row["provider"], row["outcome"], row["http_status"]) == ("openai", "failed", None)
    assert row["ttft_ms"] is not None  # tokens came before the cut
    assert "llm_completion_tokens" not in usage(store, r.run_id)
    books_agree(store, r)


def test_on_stream_error_restart_retries_a_cut_stream_from_scratch(env: Any, server: Any) -> None:
    store, providers = env
    server.script("gpt-4o-mini", reply("a b c d", cut_after=2), reply("a b c d"))
    r = run_asking(store, providers, "openai/gpt-4o-mini", stream=True, on_stream_error="restart")
    assert r.outputs["ask"] == "a b c d"  # not "a ba b c d": the text starts again
    assert [x["outcome"] for x in calls(store, r.run_id)] == ["retry", "ok"]
    books_agree(store, r)


def test_401_on_the_first_candidate_fails_over_to_the_next(env: Any, server: Any) -> None:
    store, providers = env
    server.script("gpt-4o-mini", reply(status=401, error="bad key"))
    server.script("gpt-4.1-mini", reply("from the backup"))
    sleeps = Sleeps()
    r = run_asking(store, providers, ["openai/gpt-4o-mini", "openai/gpt-4.1-mini"], sleeps)
    assert r.outputs["ask"] == "from the backup" and sleeps.waits == []
    rows = calls(store, r.run_id)
    assert [(x["model"], x["http_status"], x["outcome"], x["candidate"]) for x in rows] == [
        ("gpt-4o-mini", 401, "failover", 1),
        ("gpt-4.1-mini", 200, "ok", 2),
    ]
    price, _ = PriceBook().resolve("openai", "gpt-4.1-mini")
    tokens = (rows[1]["prompt_tokens"], 0, rows[1]["completion_tokens"])
    assert Decimal(str(rows[1]["cost"])) == cost(price, *tokens)
    assert invoice_total(store) == expected_total(usage(store, r.run_id))
    books_agree(store, r)


def test_other_4xx_fail_fast(env: Any, server: Any) -> None:
    store, providers = env
    server.script("gpt-4o-mini", reply(status=400, error="bad request"))
    r = run_asking(store, providers, ["openai/gpt-4o-mini", "backup/gpt-4o-mini"])
    assert r.status == "failed"
    assert [(x["http_status"], x["outcome"]) for x in calls(store, r.run_id)] == [(400, "failed")]
    assert len(server.requests) == 1
    books_agree(store, r)


def test_a_context_length_error_fails_over(env: Any, server: Any) -> None:
    store, providers = env
    server.script(
        "gpt-4o-mini", reply(status=400, error="This model's maximum context length is 8")
    )
    r = run_asking(store, providers, ["openai/gpt-4o-mini", "backup/gpt-4o-mini"])
    assert [x["outcome"] for x in calls(store, r.run_id)] == ["failover", "ok"]
    books_agree(store, r)


# ---------------------------------------------------------------------- money
def test_a_run_budget_refuses_a_call_before_it_is_sent(env: Any, server: Any) -> None:
    store, providers = env
    r = run_asking(
        store, providers, "openai/gpt-4o-mini", max_tokens=1000, budget={"per_run": "0.0001"}
    )
    assert r.status == "failed" and server.requests == []
    assert r.steps["ask"].error.type == "BudgetExceeded"

    async def direct() -> None:
        await allm(
            "hi",
            model="openai/gpt-4o-mini",
            providers=providers,
            max_tokens=1000,
            budget={"per_run": "0.0001"},
            ctx=_ctx_of_a_run(store),
        )

    with pytest.raises(fluxnb.BudgetExceeded) as info:
        asyncio.run(direct())
    e = info.value
    assert e.scope == "run" and e.budget == Decimal("0.0001") and e.spent == 0
    assert e.worst_case == cost(PriceBook().resolve("openai", "gpt-4o-mini")[0], 18, 0, 1000)
    assert e.candidate == "openai/gpt-4o-mini" and server.requests == []


def _ctx_of_a_run(store: Any) -> Any:
    """A ctx bound to a fresh recorder of ``store`` (as a step of tenant acme gets)."""
    from fluxnb.engine._context import StepContext, meter_sink
    from fluxnb.store._recorder import RunRecord

    rec = store.recorder()
    rec.run_started(RunRecord("direct-run", "w", "running", 0, tenant="acme"))
    return StepContext.make("direct-run", "w", "s", 1, meter_sink(rec, "s", 1, 0))


def test_a_tenant_budget_counts_earlier_runs_this_month(env: Any, server: Any) -> None:
    store, providers = env
    server.script("gpt-4o", reply("x", prompt_tokens=100_000, completion_tokens=10_000))
    first = run_asking(store, providers, "openai/gpt-4o", max_tokens=10)
    spent = Decimal(str(calls(store, first.run_id)[0]["cost"]))
    assert spent == Decimal("0.35")  # 100k in at $2.50/M + 10k out at $10/M
    budget = {"per_tenant": str(spent + Decimal("0.0001"))}
    second = run_asking(store, providers, "openai/gpt-4o", max_tokens=10, budget=budget)
    assert second.steps["ask"].error.type == "BudgetExceeded"
    assert len(server.requests) == 1


def test_an_unpriced_model_costs_null_with_one_warning(env: Any, server: Any) -> None:
    store, providers = env
    with warnings.catch_warnings(record=True) as seen:
        warnings.simplefilter("always")
        r1 = run_asking(store, providers, "backup/mystery-model")
        r2 = run_asking(store, providers, "backup/mystery-model")
    unpriced = [w for w in seen if "no price" in str(w.message)]
    assert len(unpriced) == 1 and "backup/mystery-model" in str(unpriced[0].message)
    for r in (r1, r2):
        [row] = calls(store, r.run_id)
        assert row["cost"] is None and row["cost_status"] == "unpriced"
        assert "llm_cost_usd" not in usage(store, r.run_id)
        assert usage(store, r.run_id)["llm_prompt_tokens"] > 0  # tokens are still billed


def test_price_as_prices_a_model_as_another_and_says_so(env: Any, server: Any) -> None:
    store, providers = env
    providers = [
        *providers,
        {"name": "local", "base_url": server.url, "price_as": {"llama3": "openai/gpt-4o-mini"}},
    ]
    server.script("llama3", reply("hi", prompt_tokens=1000, completion_tokens=100))
    r = run_asking(store, providers, "local/llama3")
    [row] = calls(store, r.run_id)
    assert row["price_as"] == "openai/gpt-4o-mini"
    assert Decimal(str(row["cost"])) == mini_cost(1000, 100)


def test_the_store_price_table_is_editable_and_wins(env: Any, server: Any) -> None:
    store, providers = env
    with store.connect() as con:
        con.execute(
            "INSERT INTO llm_prices VALUES ('backup', 'house', 1, 2, NULL, DATE '2026-01-01', "
            "8000, 'json stream', NULL, 'user')"
        )
    server.script("house", reply("ok", prompt_tokens=1_000_000, completion_tokens=500_000))
    r = run_asking(store, providers, "backup/house")
    assert Decimal(str(calls(store, r.run_id)[0]["cost"])) == Decimal(2)  # $1 + $1


def test_cost_optimal_and_auto_resolve_deterministically(server: Any) -> None:
    providers = read_providers(
        [
            {"name": "openrouter", "base_url": server.url},
            {"name": "openai", "base_url": server.url},
        ]
    )
    book = PriceBook()
    cheap = resolve("cost-optimal", providers, book, prompt="x" * 400, max_tokens=100)
    names = [c.name for c in cheap]
    assert names[0] == "openrouter/meta-llama/llama-3.1-8b-instruct"
    costs = [cost(book.resolve(c.provider.name, c.model)[0], 101, 0, 100) for c in cheap]
    assert costs == sorted(costs)  # type: ignore[type-var]
    assert names == [
        c.name for c in resolve("cost-optimal", providers, book, prompt="x" * 400, max_tokens=100)
    ]
    auto = [c.name for c in resolve("auto", providers, book, prompt="x", max_tokens=10)]
    assert auto[0].startswith("openrouter/") and auto[-1].startswith("openai/")
    tools = [c.name for c in resolve("cost-optimal", providers, book, needs=frozenset({"tools"}))]
    assert "openrouter/meta-llama/llama-3.1-8b-instruct" not in tools  # no tools feature


def test_a_failing_model_opens_its_own_breaker_and_is_skipped(env: Any, server: Any) -> None:
    store, providers = env
    from fluxnb.spec import CircuitBreakerSettings

    retry = LLMRetry(
        max_attempts=1, breaker=CircuitBreakerSettings(failure_threshold=2, reset_timeout=60)
    )
    for _ in range(2):
        server.script("gpt-4o-mini", reply(status=503))
        run_asking(store, providers, ["openai/gpt-4o-mini", "backup/gpt-4o-mini"], retry=retry)
    asked = len(server.requests)
    r = run_asking(store, providers, ["openai/gpt-4o-mini", "backup/gpt-4o-mini"], retry=retry)
    assert [x["provider"] for x in calls(store, r.run_id)] == ["backup"]  # openai skipped
    assert [x["model"] for x in server.requests[asked:]] == ["gpt-4o-mini"]
    assert fluxnb.breakers()["llm:openai/gpt-4o-mini"].state == "open"
    assert fluxnb.breakers()["llm:backup/gpt-4o-mini"].state == "closed"
    events = store.sql("SELECT agent, to_state FROM circuit_events").to_dict("records")
    assert {"agent": "llm:openai/gpt-4o-mini", "to_state": "open"} in events


def test_a_bad_json_answer_is_retried_and_a_schema_checks_it(env: Any, server: Any) -> None:
    store, providers = env
    schema = {"type": "object", "required": ["n"], "properties": {"n": {"type": "integer"}}}
    server.script("gpt-4o-mini", reply("not json"), reply('{"n": "x"}'), reply('{"n": 3}'))
    r = run_asking(store, providers, "openai/gpt-4o-mini", schema=schema)
    assert r.outputs["ask"] == {"n": 3}
    assert server.requests[0]["body"]["response_format"] == {"type": "json_object"}
    rows = calls(store, r.run_id)
    assert [x["outcome"] for x in rows] == ["retry", "retry", "ok"]
    assert "not JSON" in rows[0]["error"] and "schema" in rows[1]["error"]
    assert all(x["cost_status"] == "priced" for x in rows)  # a bad answer was paid for
    books_agree(store, r)


# ---------------------------------------------------------------------- manifests
def manifest(url: str, prompt: str = "Summarise: {{doc}}", extra: str = "") -> str:
    return f"""
name: summary
router: {{tenant: acme}}
providers:
  - {{name: openai, base_url: "{url}", api_key_env: FAKE_LLM_KEY}}
pipeline:
  - step: doc
  - step: summarise
    depends_on: [doc]
    llm:
      model: openai/gpt-4o-mini
      system: "You are terse."
      prompt: "{prompt}"
      max_tokens: 20{extra}
  - step: shout
    depends_on: [summarise]
"""


STEPS = {"doc": lambda: "a {{not_a_slot}} document", "shout": lambda summarise: summarise.upper()}


def test_a_manifest_llm_step_fills_its_prompt_from_its_inputs(env: Any, server: Any) -> None:
    store, _ = env
    server.script("gpt-4o-mini", reply("short"))
    r = fluxnb.run(manifest(server.url), STEPS, store=store)
    assert r.outputs == {"doc": "a {{not_a_slot}} document", "summarise": "short", "shout": "SHORT"}
    body = server.requests[-1]["body"]
    assert body["messages"] == [
        {"role": "system", "content": "You are terse."},
        {"role": "user", "content": "Summarise: a {{not_a_slot}} document"},  # filled once
    ]
    assert body["max_tokens"] == 20 and server.requests[-1]["auth"] == f"Bearer {KEY}"
    [row] = calls(store, r.run_id)
    assert row["step"] == "summarise" and row["tenant"] == "acme"


def test_run_params_never_fill_an_llm_prompt(env: Any, server: Any) -> None:
    store, _ = env
    text = manifest(server.url, "Say {{doc}} in {{lang}}") + "params:\n  lang: French\n"
    text = text.replace(
        "depends_on: [doc]\n    llm:", 'depends_on: [doc]\n    with: {lang: "{{lang}}"}\n    llm:'
    )
    r = fluxnb.run(text, STEPS, store=store, params={"lang": "Latin"})
    assert server.requests[-1]["body"]["messages"][-1]["content"] == (
        "Say a {{not_a_slot}} document in Latin"
    )
    assert r.status == "succeeded"


def test_a_prompt_slot_that_is_no_input_is_a_located_manifest_error(server: Any) -> None:
    with pytest.raises(fluxnb.ManifestError) as info:
        fluxnb.load(manifest(server.url, "Summarise {{doc}} for {{reader}}"))
    [p] = info.value.problems
    assert p.path == "pipeline[1].llm.prompt" and p.found == "reader" and p.line == 13


def test_a_manifest_never_holds_an_api_key(server: Any) -> None:
    text = manifest(server.url).replace("api_key_env: FAKE_LLM_KEY", "api_key: sk-oops")
    with pytest.raises(fluxnb.ManifestError) as info:
        fluxnb.load(text)
    assert [p.path for p in info.value.problems] == ["providers[0].api_key"]
    assert "api_key_env" in info.value.problems[0].message


def test_an_llm_step_round_trips_through_the_manifest_writer(server: Any) -> None:
    from fluxnb.spec._manifest_write import workflow_to_dict

    wf = fluxnb.load(manifest(server.url))
    again = fluxnb.load(workflow_to_dict(wf))
    assert again.steps["summarise"].llm == wf.steps["summarise"].llm
    assert again.steps["summarise"].llm.providers == wf.steps["summarise"].llm.providers


def test_a_replay_returns_the_recorded_answer_and_never_calls(env: Any, server: Any) -> None:
    store, _ = env
    server.script("gpt-4o-mini", reply("recorded answer"))
    r = fluxnb.run(manifest(server.url), STEPS, store=store)
    asked = len(server.requests)
    server.script("gpt-4o-mini", reply("a different answer"))
    report = fluxnb.replay(r.run_id, STEPS, store=store)
    assert report.identical, str(report)
    assert report.result.outputs["summarise"] == "recorded answer"
    assert len(server.requests) == asked  # no provider was called
    assert store.sql("SELECT count(*) AS n FROM llm_calls")["n"][0] == 1  # nothing recorded


def test_the_api_key_never_reaches_the_store_traces_reprs_or_errors(
    env: Any, server: Any, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    store, providers = env
    caplog.set_level("DEBUG")
    masked = f"Incorrect API key provided: {KEY[:6]}************{KEY[-4:]}"
    server.script("gpt-4o-mini", reply(status=401, error=masked), reply(status=500))
    server.script("gpt-4.1-mini", reply(status=400, error=f"bad auth header Bearer {KEY}"))
    r = run_asking(
        store,
        providers,
        ["openai/gpt-4o-mini", "openai/gpt-4.1-mini"],
        retry=LLMRetry(max_attempts=1),
    )
    assert r.status == "failed" and server.requests[0]["auth"] == f"Bearer {KEY}"
    ok = fluxnb.run(manifest(server.url), STEPS, store=store)
    wf = fluxnb.load(manifest(server.url))
    store.flush()
    export = fluxnb.export_trace(r.run_id, tmp_path / "trace.json", store=store)
    texts = [
        repr(wf),
        repr(wf.steps["summarise"]),
        repr(read_providers(providers)),
        str(r.steps["ask"].error),
        export.read_text(),
        caplog.text,
        repr(fluxnb.breakers()),
        store.sql("SELECT * FROM llm_calls").to_string(),
        fluxnb.export_trace(ok.run_id, tmp_path / "ok.json", store=store).read_text(),
    ]
    texts.append(store.sql("SELECT * FROM circuit_events").to_string())
    texts.append(store.sql("SELECT error_message, traceback FROM events").to_string())
    for fragment in (KEY, KEY[:10], KEY[-8:]):  # whole, or masked as providers echo it
        assert all(fragment not in t for t in texts), fragment
        for f in tmp_path.rglob("*"):  # the DuckDB file, its WAL, any segment left
            if f.is_file():
                assert fragment.encode() not in f.read_bytes(), (f, fragment)


def test_ctx_meter_under_the_notebook_progress_display_reaches_the_store(tmp_path: Path) -> None:
    """Regression: the progress display wrapped the recorder without its meter, so a
    step's ctx.meter (and its LLM calls) recorded nothing under %%fluxroute."""
    from fluxnb.notebook._progress import NotebookProgress
    from fluxnb.testing import MemoryRecorder

    inner = MemoryRecorder()
    shown = NotebookProgress(inner, ["s"], "w", in_kernel=False)

    def s(ctx: Any) -> int:
        ctx.meter("widgets", 3)
        return 1

    wf = fluxnb.Workflow("w")
    wf.add("s", s)
    fluxnb.run(wf, store=shown)
    assert [(u[3], u[4]) for u in inner.usage] == [("widgets", "3.000000000")]
    assert shown.llm is inner.llm


def test_importing_fluxnb_does_not_import_the_sdk() -> None:
    import subprocess
    import sys

    code = "import sys, fluxnb; fluxnb.llm; import fluxnb.llms; print('openai' in sys.modules)"
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, env={**os.environ}, timeout=60
    )
    assert out.stdout.strip() == "False", out.stderr


def test_the_overhead_benchmark_runs_and_reports_each_form() -> None:
    import subprocess
    import sys

    root = Path(__file__).resolve().parents[1]
    out = subprocess.run(
        [sys.executable, str(root / "benchmarks" / "llm.py"), "--calls", "5", "--rounds", "1"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert out.returncode == 0, out.stderr
    for form in ("loop", "recorded", "stream"):
        assert any(line.split()[:1] == [form] for line in out.stdout.splitlines()), out.stdout


def test_fluxnb_llm_blocks_in_a_sync_step_and_records_like_allm(env: Any, server: Any) -> None:
    store, providers = env
    server.script("gpt-4o-mini", reply("from a thread"))

    def ask(ctx: Any) -> Any:  # a sync step runs in a worker thread
        return fluxnb.llm("hello", model="openai/gpt-4o-mini", providers=providers, ctx=ctx)

    wf = fluxnb.Workflow("sync")
    wf.add("ask", ask)
    r = fluxnb.run(wf, store=store, tenant="acme")
    assert r.outputs["ask"] == "from a thread"
    assert [x["outcome"] for x in calls(store, r.run_id)] == ["ok"]


def test_fluxnb_llm_on_fluxnbs_own_loop_says_to_await_allm(server: Any) -> None:
    """Blocking there would wait for the very loop that has to make the call."""
    from fluxnb.engine._loop import _LoopThread

    async def on_the_loop() -> Any:
        return fluxnb.llm("x", model="a/b", providers=[{"name": "a", "base_url": server.url}])

    fut = asyncio.run_coroutine_threadsafe(on_the_loop(), _LoopThread.get().loop)
    with pytest.raises(fluxnb.LLMError, match=r"await fluxnb\.allm"):
        fut.result(timeout=30)
    assert server.requests == []


def test_a_cost_optimal_manifest_step_asks_the_cheapest_model_first(env: Any, server: Any) -> None:
    store, _ = env
    text = manifest(server.url).replace("model: openai/gpt-4o-mini", "model: cost-optimal")
    r = fluxnb.run(text, STEPS, store=store)
    assert r.status == "succeeded"
    [row] = calls(store, r.run_id)
    assert row["model"] == "gpt-4.1-nano"  # the cheapest shipped openai model that fits
    assert row["candidates"].split(",")[0] == "openai/gpt-4.1-nano"


def test_a_run_without_a_store_still_keeps_its_run_budget(server: Any) -> None:
    providers = [{"name": "openai", "base_url": server.url}]
    server.script("gpt-4o", reply("x", prompt_tokens=10_000, completion_tokens=1000))

    async def twice(ctx: Any) -> Any:
        opts = {"model": "openai/gpt-4o", "providers": providers, "ctx": ctx,
                "max_tokens": 1000, "budget": {"per_run": "0.04"}}  # fmt: skip
        await allm("first", **opts)  # $0.035: with the second's worst case ($0.01) > $0.04
        return await allm("second", **opts)

    wf = fluxnb.Workflow("nostore")
    wf.add("twice", twice)
    r = fluxnb.run(wf, store=None)
    err = r.steps["twice"].error
    assert err is not None and err.type == "BudgetExceeded" and len(server.requests) == 1


@pytest.mark.parametrize("stream", [False, True])
def test_tool_calls_are_the_output_streamed_or_not(env: Any, server: Any, stream: bool) -> None:
    store, providers = env
    tools = [{"type": "function", "function": {"name": "lookup", "parameters": {}}}]
    server.script("gpt-4o-mini", reply(tool_calls=[{"name": "lookup", "arguments": '{"q": "x"}'}]))
    r = run_asking(store, providers, "openai/gpt-4o-mini", tools=tools, stream=stream)
    assert r.outputs["ask"]["tool_calls"] == [
        {"id": "call_0", "type": "function",
         "function": {"name": "lookup", "arguments": '{"q": "x"}'}}
    ]  # fmt: skip
    assert server.requests[-1]["body"]["tools"] == tools
    [row] = calls(store, r.run_id)
    assert row["outcome"] == "ok" and "lookup" in row["output"]


def test_a_provider_reported_cost_is_kept_beside_the_computed_one(env: Any, server: Any) -> None:
    store, providers = env
    server.script("gpt-4o-mini", reply("hi", prompt_tokens=1000, completion_tokens=100, cost=0.5))
    r = run_asking(store, providers, "openai/gpt-4o-mini")
    [row] = calls(store, r.run_id)
    assert Decimal(str(row["provider_cost"])) == Decimal("0.5")
    assert Decimal(str(row["cost"])) == mini_cost(1000, 100)  # ours, from llm_prices


def test_calls_in_flight_at_once_cannot_all_pass_a_budget_that_fits_one(
    env: Any, server: Any
) -> None:
    store, providers = env
    opts = {"model": "openai/gpt-4o", "providers": providers, "max_tokens": 1000,
            "budget": {"per_run": "0.015"}}  # fmt: skip

    async def both(ctx: Any) -> Any:
        results = await asyncio.gather(
            allm("one", ctx=ctx, **opts), allm("two", ctx=ctx, **opts), return_exceptions=True
        )
        return [type(x).__name__ if isinstance(x, BaseException) else x for x in results]

    wf = fluxnb.Workflow("gather")
    wf.add("both", both)
    r = fluxnb.run(wf, store=store, tenant="acme")
    assert sorted(r.outputs["both"], key=str) == sorted(["BudgetExceeded", "echo: one"], key=str)
    assert len(server.requests) == 1


def test_a_cancelled_attempt_is_recorded_and_frees_its_breaker_probe(env: Any, server: Any) -> None:
    store, providers = env
    server.script("gpt-4o-mini", reply(stall=5.0))
    wf = fluxnb.Workflow("slow")

    async def ask(ctx: Any) -> Any:
        return await allm("hi", model="openai/gpt-4o-mini", providers=providers, ctx=ctx)

    wf.add("ask", ask, timeout=0.3)
    r = fluxnb.run(wf, store=store, tenant="acme")
    assert r.status == "failed"
    [row] = calls(store, r.run_id)
    assert row["outcome"] == "cancelled" and row["http_status"] is None
    assert not fluxnb.breakers()["llm:openai/gpt-4o-mini"].probing


def test_a_stream_shows_in_one_output_updated_in_place_and_throttled(
    env: Any, server: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """In a kernel the text goes to one display (display_id), updated at most every
    0.1 s, and once more at the end of each attempt's text."""
    import types

    shown: list[tuple[str, str]] = []

    class Handle:
        def update(self, obj: Any) -> None:
            shown.append(("update", obj.data))

    def display(obj: Any, display_id: bool = False) -> Handle:
        assert display_id is True
        shown.append(("display", obj.data))
        return Handle()

    fake = types.ModuleType("IPython.display")
    fake.HTML = lambda data: types.SimpleNamespace(data=data)  # type: ignore[attr-defined]
    fake.display = display  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "IPython.display", fake)
    store, providers = env
    words = " ".join(f"w{i}" for i in range(300))
    server.script("gpt-4o-mini", reply(words))
    r = run_asking(store, providers, "openai/gpt-4o-mini", stream=True, show=True)
    assert r.outputs["ask"] == words
    assert [kind for kind, _ in shown].count("display") == 1  # one output
    assert len(shown) < 30  # 300 tokens, far fewer redraws
    final = max(shown, key=lambda s: len(s[1]))[1]
    assert "w0 w1" in final and "openai/gpt-4o-mini" in final


def test_providers_come_from_a_file_named_in_the_manifest_or_the_environment(
    env: Any, server: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    store, _ = env
    path = tmp_path / "providers.yaml"
    path.write_text(
        f"providers:\n  - {{name: openai, base_url: '{server.url}', api_key_env: FAKE_LLM_KEY}}\n"
    )
    text = manifest(server.url)
    start, end = text.index("providers:"), text.index("pipeline:")
    from_file = text[:start] + f"providers: {path}\n" + text[end:]
    assert fluxnb.run(from_file, STEPS, store=store).status == "succeeded"
    monkeypatch.setenv("FLUXNB_LLM_PROVIDERS", str(path))
    assert fluxnb.run(text[:start] + text[end:], STEPS, store=store).status == "succeeded"
    monkeypatch.delenv("FLUXNB_LLM_PROVIDERS")
    r = fluxnb.run(text[:start] + text[end:], STEPS, store=store)
    err = r.steps["summarise"].error
    assert err is not None and "FLUXNB_LLM_PROVIDERS" in err.message


def test_a_200_that_is_no_answer_is_retried(env: Any, server: Any) -> None:
    store, providers = env
    server.script("gpt-4o-mini", reply(raw=b"<html>bad gateway</html>"),
                  reply(raw=b'{"id": "x", "choices": []}'), reply("real"))  # fmt: skip
    r = run_asking(store, providers, "openai/gpt-4o-mini")
    assert r.outputs["ask"] == "real"
    rows = calls(store, r.run_id)
    assert [(x["http_status"], x["outcome"]) for x in rows] == [
        (200, "retry"), (200, "retry"), (200, "ok")
    ]  # fmt: skip
    assert "JSONDecodeError" in rows[0]["error"] and "no choices" in rows[1]["error"]


def test_a_namespace_sees_only_its_own_llm_calls(env: Any, server: Any) -> None:
    store, providers = env
    for ns in ("team-a", "team-b"):
        with fluxnb.session(role="operator", tenant="acme", namespace=ns):
            run_asking(store, providers, "openai/gpt-4o-mini")
    with fluxnb.session(role="viewer", tenant="acme", namespace="team-a"):
        seen = store.sql("SELECT namespace FROM llm_calls")
        prices = store.sql("SELECT count(*) AS n FROM llm_prices")
    assert list(seen["namespace"]) == ["team-a"]
    assert prices["n"][0] > 0  # prices are not namespaced: everyone may read them


@pytest.mark.parametrize("bad", ["lots", "-1", True, "NaN"])
def test_a_bad_budget_is_a_located_manifest_error_or_an_llm_error(server: Any, bad: Any) -> None:
    text = manifest(server.url) + f"budget: {{per_run: {bad!r}}}\n".replace("True", "true")
    with pytest.raises(fluxnb.ManifestError) as info:
        fluxnb.load(text)
    assert [p.path for p in info.value.problems] == ["budget.per_run"]
    with pytest.raises(fluxnb.LLMError, match="per_run"):
        fluxnb.llms.Budget(per_run=bad)


# ---------------------------------------------------------------------- hostile input


NO_BRACES = st.text(alphabet=st.characters(blacklist_characters="{}"), max_size=40)


@settings(max_examples=200, deadline=None)
@given(NO_BRACES, st.text(max_size=30), st.text(max_size=30))
def test_a_template_fills_each_slot_once_and_never_reads_a_value_as_a_template(
    text: str, a: str, doc: str
) -> None:
    values = {"a": a + "{{doc}}", "doc": doc}  # a value that looks like a slot stays text
    out = render(text + "{{a}}" + text + "{{ doc }}", values)
    assert out == text + a + "{{doc}}" + text + doc
    assert SLOT.findall(text) == []


@settings(max_examples=200, deadline=None)
@given(st.text(max_size=60))
def test_scrub_removes_the_key_wherever_a_provider_puts_it(noise: str) -> None:
    from fluxnb.llms._providers import Provider, scrub

    assume("SECRET" not in noise)
    os.environ["FAKE_SCRUB_KEY"] = KEY
    p = Provider("p", "http://127.0.0.1:1/v1", api_key_env="FAKE_SCRUB_KEY")
    masked = f"{KEY[:6]}{'*' * 12}{KEY[-4:]}"
    for text in (
        noise + KEY + noise,
        f"{noise}Incorrect API key provided: {masked}.{noise}",
        f"Authorization: Bearer {masked}{noise}",
        f"{noise} {masked} {noise}",
    ):
        out = scrub(text, p)
        assert KEY not in out and masked not in out and "SECRET" not in out


def test_notebook_variables_never_fill_an_llm_prompt(server: Any) -> None:
    """The magic fills {{name}} from the notebook's variables (lookup=): never a prompt's."""
    from fluxnb.spec._params import fill_text

    text = manifest(server.url, "About {{doc}}") + "  # {{doc}} in a comment\n"
    filled = fill_text(text, lookup={"doc": "INJECTED", "url": "x"}, source="cell")
    assert "About {{doc}}" in filled and "INJECTED" not in filled


def test_a_resumed_run_asks_again_under_the_next_step_attempt(env: Any, server: Any) -> None:
    store, _ = env
    server.script("gpt-4o-mini", reply(status=403, error="not allowed"))
    first = fluxnb.run(manifest(server.url), STEPS, store=store)
    assert first.status == "failed"
    server.script("gpt-4o-mini", reply("resumed answer"))
    again = fluxnb.resume(first.run_id, STEPS, store=store)
    assert again.status == "succeeded" and again.outputs["summarise"] == "resumed answer"
    rows = calls(store, first.run_id)
    assert [(x["step_attempt"], x["call"], x["outcome"]) for x in rows] == [
        (1, 1, "failed"), (2, 1, "ok")
    ]  # fmt: skip
    assert len(server.requests) == 2  # one request per execution of the step


def test_a_budget_without_ctx_is_refused_rather_than_ignored(server: Any) -> None:
    with pytest.raises(fluxnb.LLMError, match="ctx"):
        asyncio.run(allm("hi", model="a/b", providers=[{"name": "a", "base_url": server.url}],
                         budget={"per_run": "1"}))  # fmt: skip
    assert server.requests == []


def test_an_llm_steps_retry_settings_come_from_its_manifest(env: Any, server: Any) -> None:
    store, _ = env
    extra = "\n      retry: {max_attempts: 2, initial_delay: 0s, timeout: 300ms}"
    server.script("gpt-4o-mini", reply(stall=5.0), reply(stall=5.0), reply("late"))
    wf = fluxnb.load(manifest(server.url, extra=extra))
    assert wf.steps["summarise"].llm.retry == {"max_attempts": 2, "initial_delay": 0.0,
                                               "timeout": 0.3}  # fmt: skip
    r = fluxnb.run(wf, STEPS, store=store)
    assert r.status == "failed"  # two timed-out tries, then no candidate is left
    assert [x["outcome"] for x in calls(store, r.run_id)] == ["retry", "failed"]
    with pytest.raises(fluxnb.ManifestError) as info:
        fluxnb.load(manifest(server.url, extra="\n      retry: {timeout: soon, tries: 2}"))
    assert sorted(p.path for p in info.value.problems) == [
        "pipeline[1].llm.retry.timeout", "pipeline[1].llm.retry.tries"
    ]  # fmt: skip
    again = fluxnb.load(wf.to_yaml())
    assert again.steps["summarise"].llm.retry == wf.steps["summarise"].llm.retry
