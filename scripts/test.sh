#!/usr/bin/env bash
# Set up .venv with the dev extras and check everything: format, lint, types, tests
# (unit, store, CLI, benchmarks' correctness) and the tutorial notebooks (nbmake).
source "$(dirname "${BASH_SOURCE[0]}")/_venv.sh"
python -m pip install --quiet -e ".[dev,dask,otel,widgets,browser,llm,lab]"

# the designer's browser tests drive Debian's Chromium (never `playwright install`)
if ! command -v chromium >/dev/null 2>&1; then
  echo "== installing Debian's chromium for the browser tests"
  SUDO=""; [ "$(id -u)" = 0 ] || SUDO="sudo"
  $SUDO apt-get update -qq >/dev/null
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq chromium >/dev/null
fi

echo "== designer bundle: rebuilt from widgets/ and compared with the committed one"
if command -v npm >/dev/null 2>&1; then
  (cd widgets && npm ci --no-audit --no-fund --loglevel=error && node build.mjs --check)
else
  echo "npm is missing: cannot check that fluxnb/_static matches widgets/src" >&2
  exit 1
fi
echo "== JupyterLab extension: fluxnb/labextension built from labextension/src + widgets/src"
# (rebuild: cd labextension && npm ci && npm run build; the build needs widgets/node_modules too)
node labextension/stamp.mjs --check
echo "== ruff format --check"; ruff format --check .
echo "== ruff check"; ruff check .
echo "== mypy"; mypy
echo "== pytest (tests and notebooks)"
python -m pytest -q tests --nbmake notebooks "$@"

echo "== a bare clone of HEAD (no ../shared beside it): the tests need only the repository"
# re-uses this .venv (installs nothing); PYTHONPATH puts the clone's fluxnb before the
# editable install of this checkout. Uncommitted changes are not in the clone.
clone_parent="$(mktemp -d)"
git clone --quiet --no-hardlinks "$PWD" "$clone_parent/fluxnb"
clone_status=0
(
  cd "$clone_parent/fluxnb" || exit 1  # (set -e does not reach inside "( ... ) ||")
  [ ! -e ../shared ] || { echo "../shared exists beside the clone" >&2; exit 1; }
  export PYTHONPATH="$PWD"
  # what a subprocess started elsewhere (a kernel, the CLI) imports: the clone's package
  where="$(cd / && python -c 'import fluxnb, os; print(os.path.realpath(fluxnb.__file__))')"
  echo "fluxnb imported from $where"
  case "$where" in
    "$(pwd -P)"/*) ;;
    *) echo "the clone's tests would test another copy of fluxnb" >&2; exit 1 ;;
  esac
  python -m pytest -q -x -p no:cacheprovider tests --ignore=tests/browser
) || clone_status=$?
rm -rf "$clone_parent"
[ "$clone_status" = 0 ] || exit "$clone_status"

echo "== binder: a fresh virtualenv built as Binder builds it, running the tutorials"
binder_env="$(mktemp -d)/venv"
python -m venv "$binder_env"
"$binder_env/bin/python" -m pip install --quiet --upgrade pip >/dev/null
"$binder_env/bin/python" -m pip install --quiet -r binder/requirements.txt
PATH="$binder_env/bin:$PATH" bash binder/postBuild >/dev/null
# the prebuilt JupyterLab extension is installed with the package: no Node involved
"$binder_env/bin/jupyter" labextension list 2>&1 | grep -q "fluxnb-lab.*enabled.*OK" \
  || { echo "fluxnb-lab is not listed by jupyter labextension list in Binder's venv" >&2; exit 1; }
"$binder_env/bin/python" -m pip install --quiet pytest pytest-timeout nbmake
"$binder_env/bin/python" -m pytest -q -p no:cacheprovider --nbmake notebooks
rm -rf "$(dirname "$binder_env")"
