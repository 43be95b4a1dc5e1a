"""Load test of the control plane, on loopback only: ``fluxnb serve`` in a subprocess,
N concurrent clients starting M runs of a K-step workflow, one client reading the stream,
one probing /healthz all along. Counts that nothing is lost (runs in the store, step rows,
stream events) and reports p50/p95 latency of POST .../runs, of the stream (from a run's
202 to its run.finished event) and of /healthz.

    python benchmarks/server_load.py                 # 20 clients, 500 runs, 10 steps
    python benchmarks/server_load.py --quick         # 4 clients, 20 runs (the test)
    python benchmarks/server_load.py --json          # the figures as JSON

Every request goes to 127.0.0.1; the loops are bounded (a deadline per phase).
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
TOKEN = "load-test-token"


def manifest(steps: int) -> str:
    lines = ["name: load", "agents:"]
    lines += [f'  - {{id: s{i}, run: "load_steps:step"}}' for i in range(steps)]
    lines += ["pipeline:", "  - step: s0"]
    for i in range(1, steps):
        lines += [f"  - step: s{i}", f"    depends_on: s{i - 1}"]
    return "\n".join(lines) + "\n"


class Client:
    """One keep-alive HTTP connection to the server."""

    def __init__(self, port: int) -> None:
        self.con = http.client.HTTPConnection("127.0.0.1", port, timeout=60)

    def call(self, method: str, path: str, body: Any = None) -> tuple[int, Any]:
        data = None if body is None else json.dumps(body)
        self.con.request(
            method,
            "/fluxnb/api/v1/" + path,
            body=data,
            headers={"Authorization": f"token {TOKEN}", "Content-Type": "application/json"},
        )
        r = self.con.getresponse()
        raw = r.read()
        return r.status, json.loads(raw) if raw else None


def pct(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def start_server(folder: Path, workers: int) -> tuple[subprocess.Popen[bytes], int]:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = int(s.getsockname()[1])
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(HERE), str(ROOT)])}
    server = subprocess.Popen(
        [sys.executable, "-m", "fluxnb", "serve", "--port", str(port), "--token", TOKEN,
         "--workers", str(workers), "--store", str(folder / "load.duckdb")],
        cwd=folder, env=env, stdout=subprocess.DEVNULL, stderr=(folder / "log").open("wb"),
    )  # fmt: skip
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            status, body = Client(port).call("GET", "readyz")
            if status == 200 and body["ready"]:
                return server, port
        except OSError:
            pass
        time.sleep(0.2)
    server.kill()
    raise SystemExit("the server did not get ready:\n" + (folder / "log").read_text()[-3000:])


def read_stream(port: int, wanted: int, seen: dict[str, float], stop: threading.Event) -> None:
    """Count run.finished events (time of arrival per run) until ``wanted`` or ``stop``."""
    con = http.client.HTTPConnection("127.0.0.1", port, timeout=120)
    con.request("GET", "/fluxnb/api/v1/stream?timeout=600",
                headers={"Authorization": f"token {TOKEN}"})  # fmt: skip
    r = con.getresponse()
    kind = None
    while len(seen) < wanted and not stop.is_set():
        line = r.readline()
        if not line:
            break
        text = line.decode().rstrip("\n")
        if text.startswith("event: "):
            kind = text[7:]
        elif text.startswith("data: ") and kind == "run.finished":
            seen[json.loads(text[6:])["run_id"]] = time.perf_counter()
    con.close()


def probe_health(port: int, stop: threading.Event, out: list[float]) -> None:
    client = Client(port)
    while not stop.is_set():
        t = time.perf_counter()
        status, _ = client.call("GET", "healthz")
        out.append(time.perf_counter() - t)
        assert status == 200
        time.sleep(0.05)


def main(argv: list[str] | None = None) -> dict[str, Any]:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--clients", type=int, default=20)
    p.add_argument("--runs", type=int, default=500)
    p.add_argument("--steps", type=int, default=10)
    p.add_argument("--workers", type=int, default=2)
    p.add_argument("--quick", action="store_true", help="4 clients, 20 runs")
    p.add_argument("--json", action="store_true")
    args = p.parse_args(argv)
    if args.quick:
        args.clients, args.runs = 4, 20
    folder = Path(tempfile.mkdtemp(prefix="fluxnb-load-"))
    server, port = start_server(folder, args.workers)
    try:
        return run_load(args, port)
    finally:
        server.terminate()
        server.wait(20)


def run_load(args: argparse.Namespace, port: int) -> dict[str, Any]:
    admin = Client(port)
    status, _ = admin.call("PUT", "workflows/load", {"manifest": manifest(args.steps)})
    assert status in (200, 201), status
    stop = threading.Event()
    finished: dict[str, float] = {}
    reader = threading.Thread(target=read_stream, args=(port, args.runs, finished, stop))
    reader.start()
    time.sleep(0.3)  # the stream is open before the first run starts
    health: list[float] = []
    prober = threading.Thread(target=probe_health, args=(port, stop, health))
    prober.start()
    posted: dict[str, float] = {}
    post_latency: list[float] = []
    lock = threading.Lock()
    per_client = [args.runs // args.clients + (i < args.runs % args.clients)
                  for i in range(args.clients)]  # fmt: skip

    def client_loop(n: int) -> None:
        client = Client(port)
        for _ in range(n):
            t = time.perf_counter()
            code, body = client.call("POST", "workflows/load/runs", {})
            done = time.perf_counter()
            assert code == 202, (code, body)
            with lock:
                post_latency.append(done - t)
                posted[body["run_id"]] = done

    started = time.perf_counter()
    threads = [threading.Thread(target=client_loop, args=(n,)) for n in per_client]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    posting_s = time.perf_counter() - started
    reader.join(timeout=max(120.0, args.runs * 0.5))
    total_s = time.perf_counter() - started
    stop.set()
    prober.join()
    _, counts = admin.call(
        "POST", "sql",
        {"query": "SELECT (SELECT count(*) FROM runs WHERE workflow = 'load' AND "
                  "status = 'succeeded') AS runs, (SELECT count(*) FROM events e JOIN runs r "
                  "USING (run_id) WHERE r.workflow = 'load' AND e.final) AS steps"},
    )  # fmt: skip
    stream_latency = [finished[r] - posted[r] for r in posted if r in finished]
    ms = 1000.0
    report = {
        "clients": args.clients,
        "runs_posted": len(posted),
        "runs_succeeded_in_store": counts["rows"][0]["runs"],
        "step_rows_in_store": counts["rows"][0]["steps"],
        "steps_expected": args.runs * args.steps,
        "run_finished_events_on_stream": len(finished),
        "post_p50_ms": round(statistics.median(post_latency) * ms, 1),
        "post_p95_ms": round(pct(post_latency, 0.95) * ms, 1),
        "stream_p50_ms": round(pct(stream_latency, 0.5) * ms, 1),
        "stream_p95_ms": round(pct(stream_latency, 0.95) * ms, 1),
        "healthz_p50_ms": round(pct(health, 0.5) * ms, 1),
        "healthz_max_ms": round(max(health) * ms, 1) if health else None,
        "healthz_probes": len(health),
        "posting_s": round(posting_s, 2),
        "all_finished_s": round(total_s, 2),
        "runs_per_s": round(len(finished) / total_s, 1),
    }
    report["nothing_lost"] = (
        report["runs_posted"] == args.runs
        and report["runs_succeeded_in_store"] == args.runs
        and report["step_rows_in_store"] == args.runs * args.steps
        and report["run_finished_events_on_stream"] == args.runs
    )
    return report


if __name__ == "__main__":
    result = main()
    if "--json" in sys.argv:
        print(json.dumps(result, indent=1))
    else:
        for key, value in result.items():
            print(f"{key:32} {value}")
    sys.exit(0 if result["nothing_lost"] else 1)
