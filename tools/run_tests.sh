#!/usr/bin/env bash
# Run mmdfkd's test suite: the README's test command, and what CI runs.
#
#   bash tools/run_tests.sh [extra pytest options, e.g. -k agreement -x]
#   PYTEST_WORKERS=0 bash tools/run_tests.sh   # one process, no xdist
#
# Interpreter, first match wins:
#   1. $PYTHON, when set (e.g. PYTHON=/work/venv/bin/python);
#   2. <repo>/.venv/bin/python, when it exists (the venv .ci/run creates);
#      its bin/ is then also put first on PATH, so tests that start
#      `python` or `torchrun` get the same environment;
#   3. `python` on PATH (an activated venv, conda, ...).
# The chosen interpreter is exported as PYTHON, which tools/dist_train.sh and
# tools/dist_test.sh use, so tests that launch them stay in the same env.
#
# Steps: export OMP_NUM_THREADS=1 (2-core machines: one BLAS thread per
# process keeps multi-process tests from oversubscribing), lay out
# Fashion-MNIST under data/fashion_mnist (from Debian's dataset-fashion-mnist,
# idempotent), run pytest in PYTEST_WORKERS worker processes. pytest's exit
# code 5 ("no tests collected") is a failure here: an empty suite must not
# pass CI.
set -euo pipefail

ROOT="$(cd "$(dirname "$0")/.." && pwd)"
cd "$ROOT"  # the data paths of the configs and tests are relative to it

export OMP_NUM_THREADS=1

if [ -n "${PYTHON:-}" ]; then
    PY="$PYTHON"
elif [ -x "$ROOT/.venv/bin/python" ]; then
    PY="$ROOT/.venv/bin/python"
    export PATH="$ROOT/.venv/bin:$PATH"
    export VIRTUAL_ENV="$ROOT/.venv"
else
    PY=python
fi
export PYTHON="$PY"
echo "run_tests.sh: using $("$PY" -c 'import sys; print(sys.executable)')" \
     "($("$PY" --version 2>&1))"

if ! "$PY" tools/dataset_converters/prepare_fashion_mnist.py; then
    echo "run_tests.sh: ERROR: preparing Fashion-MNIST failed; install " \
         "Debian's package first: apt-get install dataset-fashion-mnist" >&2
    exit 1
fi

# PYTEST_WORKERS pytest-xdist workers (default 2, one per core here; 0 runs in
# this process). --dist loadfile keeps a test file on one worker, so its
# module-scoped fixtures (the real-data teacher, trained once) are built once.
# Tests that start several processes pick free ports, so two workers never
# share a rendezvous.
WORKERS="${PYTEST_WORKERS:-2}"
XDIST=()
if [ "$WORKERS" != 0 ]; then
    XDIST=(-n "$WORKERS" --dist loadfile)
fi

status=0
"$PY" -m pytest tests -v --timeout=900 -p no:cacheprovider --durations=15 \
    "${XDIST[@]}" "$@" || status=$?

if [ "$status" -eq 5 ]; then
    echo "run_tests.sh: ERROR: pytest collected no tests (exit code 5);" \
         "an empty test suite is a failure" >&2
    exit 1
fi
if [ "$status" -ne 0 ]; then
    echo "run_tests.sh: pytest failed with exit code $status" >&2
fi
exit "$status"
