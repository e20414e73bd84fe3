#!/usr/bin/env bash
# Set up a fresh Debian machine with Python 3.11 for mmdfkd: Debian's
# Fashion-MNIST package, a virtual environment in .venv with the pinned
# runtime and test requirements, and mmdfkd itself (editable). Idempotent.
#
#   bash tools/setup_env.sh
#
# torch/torchvision: requirements/runtime.txt pins the pair whose wheels lie
# on the machine's disk; where /etc/xdg/pip holds a constraints file, plain
# pip takes them from there instead of downloading.
set -euo pipefail
export DEBIAN_FRONTEND=noninteractive
export PIP_DISABLE_PIP_VERSION_CHECK=1
export PIP_NO_INPUT=1
export PIP_PROGRESS_BAR=off

cd "$(dirname "$0")/.."

# root needs no sudo (and a minimal image may not have it)
SUDO=()
if [ "$(id -u)" -ne 0 ]; then
    SUDO=(sudo)
fi

echo "== apt: dataset-fashion-mnist"
# try without `apt-get update` first: it is slow and the package lists of
# the machine often know the package already
if ! "${SUDO[@]}" apt-get install -y -q --no-install-recommends \
        dataset-fashion-mnist; then
    echo "apt-get install failed; updating the package lists and retrying"
    "${SUDO[@]}" apt-get update -q
    "${SUDO[@]}" apt-get install -y -q --no-install-recommends \
        dataset-fashion-mnist
fi

echo "== venv: .venv (python3.11)"
if [ ! -x .venv/bin/python ]; then
    python3.11 -m venv .venv
fi
.venv/bin/python -m pip install -r requirements/runtime.txt \
    -r requirements/tests.txt
.venv/bin/python -m pip install -e . --no-deps
.venv/bin/python -m pip check || true  # informative only: list conflicts
