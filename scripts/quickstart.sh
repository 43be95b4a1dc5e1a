#!/usr/bin/env bash
# Set up fluxnb in .venv and run the quickstart workflow on the default DuckDB store
# (.fluxnb/fluxnb.duckdb), then show the run's trace with SQL.
source "$(dirname "${BASH_SOURCE[0]}")/_venv.sh"
python -m pip install --quiet -e .
echo "== fluxnb run examples/quickstart.yaml"
fluxnb run examples/quickstart.yaml --import examples/quickstart_steps.py
echo
echo "== the trace, by SQL"
fluxnb sql "SELECT step, attempt, status, round(duration_s * 1000, 1) AS ms, error_type
            FROM events
            WHERE run_id = (SELECT run_id FROM runs ORDER BY started_at DESC LIMIT 1)
            ORDER BY seq, attempt"
echo
echo "== recent runs"
fluxnb runs --limit 5
