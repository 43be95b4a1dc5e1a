#!/usr/bin/env bash
# Set up .venv with the dev extras and check everything: format, lint, types, tests
# (unit, store, CLI, benchmarks' correctness) and the tutorial notebooks (nbmake).
source "$(dirname "${BASH_SOURCE[0]}")/_venv.sh"
python -m pip install --quiet -e ".[dev,dask]"
echo "== ruff format --check"; ruff format --check .
echo "== ruff check"; ruff check .
echo "== mypy"; mypy
echo "== pytest (tests and notebooks)"
python -m pytest -q tests --nbmake notebooks "$@"
