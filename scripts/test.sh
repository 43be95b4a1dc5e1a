#!/usr/bin/env bash
# Set up .venv with the dev extras and check everything: format, lint, types, tests
# (unit, store, CLI, benchmarks' correctness) and the tutorial notebooks (nbmake).
source "$(dirname "${BASH_SOURCE[0]}")/_venv.sh"
python -m pip install --quiet -e ".[dev,dask,otel]"
echo "== ruff format --check"; ruff format --check .
echo "== ruff check"; ruff check .
echo "== mypy"; mypy
echo "== pytest (tests and notebooks)"
python -m pytest -q tests --nbmake notebooks "$@"

echo "== binder: a fresh virtualenv built as Binder builds it, running the tutorials"
binder_env="$(mktemp -d)/venv"
python -m venv "$binder_env"
"$binder_env/bin/python" -m pip install --quiet --upgrade pip >/dev/null
"$binder_env/bin/python" -m pip install --quiet -r binder/requirements.txt
PATH="$binder_env/bin:$PATH" bash binder/postBuild >/dev/null
"$binder_env/bin/python" -m pip install --quiet pytest pytest-timeout nbmake
"$binder_env/bin/python" -m pytest -q -p no:cacheprovider --nbmake notebooks
rm -rf "$(dirname "$binder_env")"
