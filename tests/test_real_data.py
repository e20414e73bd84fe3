"""Real data: train the LeNet-5 teacher on Fashion-MNIST, then distil a
LeNet-5-half student WITHOUT data and check its accuracy on the real test
set against stated bars. Budgets are iteration counts, not seconds."""
import json
import os.path as osp
import re

import pytest

from conftest import run_tool

TEACHER_CONFIG = 'configs/teachers/lenet5_fashionmnist.py'
DEEPINV_CONFIG = \
    'configs/deepinv/deepinv_adi_lenet5_lenet5half_1xb256_fashionmnist.py'
TEACHER_BAR = 89.0
# A minimal hand-written DAFL loop reaches about 45-50 % in five CPU-minutes
# (../shared/docs); the issue asks for >= 60 % in a budget of that size.
STUDENT_BAR = 60.0
STUDENT_ITERS = 40


def last_accuracy(log):
    found = re.findall(r'accuracy/top1: ([0-9.]+)', log)
    assert found, 'no accuracy in the log:\n' + log[-3000:]
    return float(found[-1])


@pytest.fixture(scope='module')
def trained_teacher(tmp_path_factory, fashion_mnist_root):
    work_dir = str(tmp_path_factory.mktemp('teacher'))
    proc = run_tool(['tools/train.py', TEACHER_CONFIG, '--work-dir',
                     work_dir, '--cfg-options',
                     f'data_root={fashion_mnist_root}'], timeout=1200)
    accuracy = last_accuracy(proc.stdout + proc.stderr)
    with open(osp.join(work_dir, 'last_checkpoint')) as f:
        checkpoint = f.read().strip()
    return checkpoint, accuracy


@pytest.mark.timeout(1800)  # includes training the teacher (~1.5 min)
def test_teacher_reaches_bar(trained_teacher):
    _, accuracy = trained_teacher
    assert accuracy >= TEACHER_BAR


# about 5 CPU-minutes alone; generous wall-clock limit for loaded machines
@pytest.mark.timeout(3000)
def test_deepinversion_student_beats_bar(trained_teacher, tmp_path,
                                         fashion_mnist_root):
    checkpoint, teacher_accuracy = trained_teacher
    work_dir = str(tmp_path / 'deepinv')
    run_tool(['tools/train.py', DEEPINV_CONFIG, '--work-dir', work_dir,
              '--cfg-options', f'model.teachers.teacher.ckpt_path={checkpoint}',
              f'data_root={fashion_mnist_root}',
              f'train_cfg.max_iters={STUDENT_ITERS}',
              f'train_cfg.val_interval={STUDENT_ITERS}'], timeout=1800)
    # the LAST checkpoint, evaluated by tools/test.py: no best-of-N picking
    metrics_file = osp.join(work_dir, 'metrics.json')
    run_tool(['tools/test.py', DEEPINV_CONFIG,
              osp.join(work_dir, f'iter_{STUDENT_ITERS}.pth'), '--work-dir',
              work_dir, '--out', metrics_file, '--cfg-options',
              f'model.teachers.teacher.ckpt_path={checkpoint}',
              f'data_root={fashion_mnist_root}'])
    with open(metrics_file) as f:
        metrics = json.load(f)
    print(f'teacher {teacher_accuracy:.2f} student {metrics}')
    assert metrics['accuracy/top1'] >= STUDENT_BAR, metrics
