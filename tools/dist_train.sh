#!/usr/bin/env bash
# Distributed training with torchrun (one process per GPU, or per CPU worker
# with the gloo backend on a machine without GPUs).
#
#   bash tools/dist_train.sh CONFIG NUM_PROCESSES [train.py args...]
#
# Multi-node: set NNODES, NODE_RANK, MASTER_ADDR and PORT on every node.
# PYTHON selects the interpreter (default: python), e.g. PYTHON=.venv/bin/python.

CONFIG=$1
GPUS=$2
NNODES=${NNODES:-1}
NODE_RANK=${NODE_RANK:-0}
PORT=${PORT:-29500}
MASTER_ADDR=${MASTER_ADDR:-"127.0.0.1"}

# If a process dies, torchrun stops the others and exits non-zero, naming
# the failed rank and its exit code or signal; a process that hangs makes
# the others fail after env_cfg.dist_cfg.timeout seconds (gloo/nccl
# collective timeout). `exec` hands signals (Ctrl-C, a scheduler's kill)
# straight to torchrun, which passes them on to the workers.
PYTHONPATH="$(dirname "$0")/..":$PYTHONPATH \
exec ${PYTHON:-python} -m torch.distributed.run \
    --nnodes="$NNODES" \
    --node_rank="$NODE_RANK" \
    --master_addr="$MASTER_ADDR" \
    --nproc_per_node="$GPUS" \
    --master_port="$PORT" \
    "$(dirname "$0")/train.py" \
    "$CONFIG" \
    --launcher pytorch "${@:3}"
