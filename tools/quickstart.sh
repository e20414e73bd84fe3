#!/usr/bin/env bash
# The README's main job, end to end on a fresh machine (CPU is enough):
#   1. set up .venv and Debian's Fashion-MNIST   (tools/setup_env.sh)
#   2. lay out Fashion-MNIST for mmpretrain      (data/fashion_mnist)
#   3. train the LeNet-5 teacher on real data    (checkpoints/lenet5_fashionmnist.pth)
#   4. distil a LeNet-5-half student DATA-FREE   (work_dirs/<config name>)
#   5. print the student's test accuracy and where the image grids are
#
#   bash tools/quickstart.sh [CONFIG]     (default: the DeepInversion config)
set -euo pipefail
cd "$(dirname "$0")/.."
export OMP_NUM_THREADS=${OMP_NUM_THREADS:-1}

CONFIG=${1:-configs/deepinv/deepinv_adi_lenet5_lenet5half_1xb256_fashionmnist.py}
TEACHER=checkpoints/lenet5_fashionmnist.pth

bash tools/setup_env.sh
PY=.venv/bin/python

"$PY" tools/dataset_converters/prepare_fashion_mnist.py

if [ ! -f "$TEACHER" ]; then
    echo "== training the teacher (configs/teachers/lenet5_fashionmnist.py)"
    "$PY" tools/train.py configs/teachers/lenet5_fashionmnist.py \
        --work-dir work_dirs/teacher_lenet5_fashionmnist
    mkdir -p checkpoints
    cp "$(cat work_dirs/teacher_lenet5_fashionmnist/last_checkpoint)" "$TEACHER"
fi

NAME=$(basename "$CONFIG" .py)
WORK_DIR=work_dirs/$NAME
echo "== data-free distillation: $CONFIG"
"$PY" tools/train.py "$CONFIG" --work-dir "$WORK_DIR" \
    --cfg-options "model.teachers.teacher.ckpt_path=$TEACHER"

echo "== student accuracy on the Fashion-MNIST test set (last checkpoint)"
"$PY" tools/test.py "$CONFIG" "$(cat "$WORK_DIR/last_checkpoint")" \
    --work-dir "$WORK_DIR" --out "$WORK_DIR/test_metrics.json"
echo "metrics: $WORK_DIR/test_metrics.json"
echo "synthetic image grids: $(ls -d "$WORK_DIR"/*/vis_data/vis_image | tail -1)"
