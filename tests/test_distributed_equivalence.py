"""tools/dist_train.sh with 2 CPU processes (gloo): the same result as 1
process with the same global batch, a checkpoint that 1 process resumes,
and a bounded stop when a rank dies or hangs.

Equivalence is tested where it can hold to float precision: a DFAD run
whose update decomposes over the batch (per-sample L1 loss, a student
without BatchNorm, the generator producing the student's batches in eval
mode and not trained). There, 2 ranks x 16 images average the same
gradients as 1 process x 32 images, so losses agree to ``REL_TOL`` and
validation to one image. With train-mode BatchNorm (every shipped config)
each rank normalises with its own half-batch statistics, as in any DDP run
without SyncBN, and the runs only agree statistically; that full path is
exercised by ``tests/test_e2e_train.py::test_dist_train_two_cpu_processes``.
"""
import glob
import json
import math
import os
import os.path as osp
import signal
import socket
import subprocess
import sys
import time

import pytest
import torch

from conftest import ROOT, tool_env
from test_collapse_guard import save_diverse_teacher
from test_exact_resume import TESTS_DIR, failing_config, logged_iterations

DFAD = 'configs/dfad/dfad_lenet5_lenet5half_1xb128_fashionmnist.py'
REL_TOL = 1e-4  # float summation order differs between 1 and 2 ranks
VAL_IMAGES = 512
DECOMPOSABLE = [
    'model.generator_iter=0',
    'model.generator_train_mode_in_student_step=False',
    'model.architecture.backbone.with_bn=False'
]


@pytest.fixture(scope='module')
def diverse_teacher(tmp_path_factory):
    """A teacher that spreads images over the classes, so that accuracy
    and agreement on real images are not those of a constant predictor."""
    return save_diverse_teacher(
        tmp_path_factory.mktemp('teacher') / 'diverse_lenet5.pth')


def free_port():
    with socket.socket() as sock:
        sock.bind(('127.0.0.1', 0))
        return sock.getsockname()[1]


def run(args, processes, timeout=240):
    """Run tools/train.py (1 process) or tools/dist_train.sh in its own
    process group; return (completed process, seconds taken)."""
    env = tool_env()
    env['PYTHONPATH'] = TESTS_DIR + os.pathsep + env['PYTHONPATH']
    if processes == 1:
        command = [sys.executable, 'tools/train.py', *args]
    else:
        env.update(PYTHON=sys.executable, PORT=str(free_port()))
        command = ['bash', 'tools/dist_train.sh', args[0], str(processes),
                   *args[1:]]
    start = time.monotonic()
    proc = subprocess.Popen(
        command, cwd=ROOT, env=env, stdout=subprocess.PIPE,
        stderr=subprocess.PIPE, text=True, start_new_session=True)
    try:
        stdout, stderr = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)  # no orphaned workers
        proc.communicate()
        raise
    return (subprocess.CompletedProcess(command, proc.returncode, stdout,
                                        stderr), time.monotonic() - start)


def options(teacher, max_iters, batch_size, *extra):
    return [
        '--cfg-options', f'model.teachers.teacher.ckpt_path={teacher}',
        f'train_cfg.max_iters={max_iters}', 'train_cfg.val_interval=4',
        'default_hooks.checkpoint.interval=4',
        'default_hooks.checkpoint.max_keep_ckpts=2',
        'default_hooks.logger.interval=1', 'log_processor.window_size=1',
        # the guard's class histogram and agreement are reduced over ranks
        'default_hooks.collapse_guard.interval=2',
        f'val_dataloader.dataset.indices={VAL_IMAGES}',
        'val_dataloader.batch_size=256',
        f'train_dataloader.batch_size={batch_size}', 'model.student_iter=2',
        'train_dataloader.dataset.num_draws=3', 'env_cfg.dist_cfg.timeout=60',
        *extra
    ]


def check_ok(proc):
    log = proc.stdout + proc.stderr
    assert proc.returncode == 0, log[-4000:]
    # a gloo group left alive at exit aborts a finished rank (SIGABRT)
    assert 'terminate called' not in log, log[-4000:]


def val_metrics(work_dir):
    """The validation metrics of every run in ``work_dir``, in order."""
    metrics = []
    for path in sorted(glob.glob(osp.join(work_dir, '*', 'vis_data',
                                          'scalars.json'))):
        with open(path) as f:
            metrics += [r for r in map(json.loads, f)
                        if 'accuracy/top1' in r]
    return metrics


def assert_close(actual, expected, keys, rel_tol, abs_tol=1e-9):
    for key in keys:
        assert math.isclose(actual[key], expected[key], rel_tol=rel_tol,
                            abs_tol=abs_tol), \
            f'{key}: {actual[key]} != {expected[key]}'


def test_two_processes_match_one_and_resume_in_one(tmp_path, diverse_teacher,
                                                   fashion_mnist_root):
    reference_dir = str(tmp_path / 'one_process')
    reference, _ = run([DFAD, '--work-dir', reference_dir,
                        *options(diverse_teacher, 8, 32,
                                 *DECOMPOSABLE)], processes=1)
    check_ok(reference)

    ddp_dir = str(tmp_path / 'two_processes')
    ddp, _ = run([DFAD, '--work-dir', ddp_dir,
                  *options(diverse_teacher, 4, 16, *DECOMPOSABLE)],
                 processes=2)
    check_ok(ddp)
    assert 'Distributed training: True' in ddp.stdout + ddp.stderr

    # same student after 4 iterations: weights, validation, guard metrics
    expected = torch.load(osp.join(reference_dir, 'iter_4.pth'),
                          weights_only=True)['state_dict']
    actual = torch.load(osp.join(ddp_dir, 'iter_4.pth'),
                        weights_only=True)['state_dict']
    assert not [k for k in actual if '.module.' in k], \
        'checkpoint keys must not depend on the DDP wrapping'
    assert actual.keys() == expected.keys()
    for key, value in expected.items():
        if torch.is_tensor(value) and value.is_floating_point():
            assert torch.allclose(actual[key], value, rtol=REL_TOL,
                                  atol=1e-6), key
    one_image = 100 / VAL_IMAGES  # in accuracy points
    reference_val = val_metrics(reference_dir)  # after iterations 4 and 8
    assert_close(val_metrics(ddp_dir)[0], reference_val[0],
                 ['accuracy/top1', 'agreement/top1'], 0, one_image)
    reference_log = logged_iterations(reference_dir)
    ddp_log = logged_iterations(ddp_dir)
    for it in (2, 4):
        assert_close(ddp_log[it], reference_log[it],
                     ['collapse_guard/class_entropy',
                      'collapse_guard/agreement'], 1e-6)

    # 1 process resumes the 2-process checkpoint and continues exactly as
    # the 1-process run did (global batch, data position, optimiser)
    resumed, _ = run([DFAD, '--work-dir', ddp_dir, '--resume',
                      *options(diverse_teacher, 8, 32, *DECOMPOSABLE)],
                     processes=1)
    check_ok(resumed)
    log = resumed.stdout + resumed.stderr
    assert 'resumed epoch: 0, iter: 4' in log
    assert 'missing keys' not in log and 'unexpected key' not in log
    resumed_log = logged_iterations(ddp_dir)
    for it in range(5, 9):
        keys = [k for k in reference_log[it] if 'loss' in k]
        assert keys
        assert_close(resumed_log[it], reference_log[it], keys, REL_TOL)
    assert_close(val_metrics(ddp_dir)[1], reference_val[1],
                 ['accuracy/top1', 'agreement/top1'], 0, one_image)


@pytest.mark.parametrize('failure', ['sigkill', 'hang', 'nan_generator'])
def test_a_failed_rank_stops_the_run_in_bounded_time(tmp_path,
                                                     random_lenet5_teacher,
                                                     fashion_mnist_root,
                                                     failure):
    """Rank 1 is SIGKILLed (torchrun stops rank 0), hangs (rank 0's next
    collective times out after env_cfg.dist_cfg.timeout = 10 s) or gets a
    NaN loss (with several processes the collapse guard does not skip
    updates: rank 1 stops with the loss named, and torchrun stops rank
    0)."""
    config = failing_config(tmp_path, DFAD, iteration=3, rank=1,
                            failure=failure)
    proc, seconds = run(
        [config, '--work-dir', str(tmp_path / 'work'),
         *options(random_lenet5_teacher, 6, 8, 'env_cfg.dist_cfg.timeout=10')],
        processes=2, timeout=150)

    assert seconds < 120
    assert proc.returncode != 0
    log = proc.stdout + proc.stderr
    assert 'tools/train.py FAILED' in log
    if failure == 'sigkill':
        assert 'Signal 9 (SIGKILL) received by PID' in log
        root_cause = log[log.index('Root Cause'):]
        assert 'rank      : 1 (local_rank: 1)' in root_cause
    elif failure == 'hang':
        assert 'Timed out waiting 10000ms' in log
    else:
        # DFAD's student phase comes first: its loss is the first NaN
        assert 'FloatingPointError: the student loss became nan' in log
        root_cause = log[log.index('Root Cause'):]
        assert 'rank      : 1 (local_rank: 1)' in root_cause
