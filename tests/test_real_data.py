"""Real data: train the LeNet-5 teacher on Fashion-MNIST, then distil a
LeNet-5-half student WITHOUT data and check its accuracy on the real test
set against stated bars. Budgets are iteration counts, not seconds."""
import json
import os.path as osp
import re

import pytest

from conftest import run_tool

TEACHER_CONFIG = 'configs/teachers/lenet5_fashionmnist.py'
STUDENT_CONFIG = 'configs/dfq/dfq_lenet5_lenet5half_1xb128_fashionmnist.py'
TEACHER_BAR = 89.0
# A minimal hand-written DAFL loop reaches about 45-50 % in five CPU-minutes
# (../shared/docs); the foundation issue asked for >= 60 % in a budget of
# that size. DFQ passes 70 % after 200 iterations (about 4 CPU-minutes):
# 70.9 / 73.2 % at iteration 100 and 79.1 / 77.1 % at 200 on seeds 0 / 1
# without the learning-rate steps; this run (seed 0, the config's, with
# the steps) read 76.55 %. ADI used to be this test's run; at 40
# iterations it read 54.3 / 60.5 / 62.4 % on seeds 0 / 1 / 2, too close
# to any useful bar to be a stable check.
STUDENT_BAR = 70.0
STUDENT_ITERS = 200
# the config's x0.1 steps at 60 / 75 / 90 % of the run, for the short run
STUDENT_MILESTONES = [int(f * STUDENT_ITERS) for f in (0.6, 0.75, 0.9)]


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


# about 4 CPU-minutes alone; generous wall-clock limit for loaded machines
@pytest.mark.timeout(3000)
def test_dfq_student_beats_bar(trained_teacher, tmp_path, fashion_mnist_root):
    checkpoint, teacher_accuracy = trained_teacher
    work_dir = str(tmp_path / 'dfq')
    milestones = ','.join(map(str, STUDENT_MILESTONES))
    run_tool(['tools/train.py', STUDENT_CONFIG, '--work-dir', work_dir,
              '--cfg-options', f'model.teachers.teacher.ckpt_path={checkpoint}',
              f'data_root={fashion_mnist_root}',
              f'train_cfg.max_iters={STUDENT_ITERS}',
              f'train_cfg.val_interval={STUDENT_ITERS}',
              f'param_scheduler.architecture.milestones=[{milestones}]',
              f'default_hooks.checkpoint.interval={STUDENT_ITERS}'],
             timeout=1800)
    # the LAST checkpoint, evaluated by tools/test.py: no best-of-N picking
    metrics_file = osp.join(work_dir, 'metrics.json')
    run_tool(['tools/test.py', STUDENT_CONFIG,
              osp.join(work_dir, f'iter_{STUDENT_ITERS}.pth'), '--work-dir',
              work_dir, '--out', metrics_file, '--cfg-options',
              f'model.teachers.teacher.ckpt_path={checkpoint}',
              f'data_root={fashion_mnist_root}'])
    with open(metrics_file) as f:
        metrics = json.load(f)
    print(f'teacher {teacher_accuracy:.2f} student {metrics}')
    assert metrics['accuracy/top1'] >= STUDENT_BAR, metrics
