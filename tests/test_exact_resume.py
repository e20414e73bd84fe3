"""Exact resumption: a run SIGKILLed at an arbitrary point (between
iterations, or in the middle of writing a checkpoint) and restarted with
``--resume`` logs the same per-iteration losses as the uninterrupted run and
ends in the same weights, optimiser, scheduler and memory-bank states.

Also imported by the training subprocesses (``custom_imports``) for the
test-only :class:`FailAtIterationHook`.
"""
import glob
import json
import math
import os
import os.path as osp
import random
import shutil
import signal
import subprocess
import sys
import time

import numpy as np
import pytest
import torch
from mmengine.dist import get_rank
from mmengine.hooks import Hook

from conftest import ROOT, tool_env
from mmdfkd.registry import HOOKS

TESTS_DIR = osp.dirname(osp.abspath(__file__))
DAFL = 'configs/dafl/dafl_lenet5_lenet5half_1xb128_fashionmnist.py'
ADI = 'configs/deepinv/deepinv_adi_lenet5_lenet5half_1xb256_fashionmnist.py'
REL_TOL = 1e-6


@HOOKS.register_module(force=True)
class FailAtIterationHook(Hook):
    """Test only: make rank ``rank`` fail at ``iteration`` (1-based):
    ``'sigkill'`` kills the process (no clean-up of any kind) before the
    iteration starts, ``'sigkill_during_save'`` kills it in the middle of
    writing that iteration's checkpoint, ``'hang'`` blocks it forever,
    ``'nan_generator'`` sets the generator's weights to NaN (that rank's
    losses become NaN)."""

    priority = 'VERY_HIGH'

    def __init__(self, iteration: int, rank: int = 0,
                 failure: str = 'sigkill') -> None:
        assert failure in ('sigkill', 'sigkill_during_save', 'hang',
                           'nan_generator')
        self.iteration = iteration
        self.rank = rank
        self.failure = failure

    def _due(self, runner) -> bool:
        return runner.iter + 1 == self.iteration and get_rank() == self.rank

    def before_train_iter(self, runner, batch_idx, data_batch=None):
        if not self._due(runner):
            return
        if self.failure == 'sigkill':
            os.kill(os.getpid(), signal.SIGKILL)
        elif self.failure == 'hang':
            while True:
                time.sleep(60)
        elif self.failure == 'nan_generator':
            # names under DDP wrapping: module.generator.module.<...>
            params = [p for name, p in runner.model.named_parameters()
                      if 'generator' in name.split('.')]
            assert params, 'no generator parameters found'
            with torch.no_grad():
                for param in params:
                    param.fill_(float('nan'))

    def before_save_checkpoint(self, runner, checkpoint):
        if self.failure == 'sigkill_during_save' and self._due(runner):
            # the checkpoint bytes are written, then fsynced: die there,
            # with half of them on disk
            def write_half_and_die(fd):
                os.ftruncate(fd, os.fstat(fd).st_size // 2)
                os.kill(os.getpid(), signal.SIGKILL)

            os.fsync = write_half_and_die


def train(config, work_dir, options, resume=None, timeout=300):
    env = tool_env()
    env['PYTHONPATH'] = TESTS_DIR + os.pathsep + env['PYTHONPATH']
    args = [sys.executable, 'tools/train.py', config, '--work-dir', work_dir,
            '--no-validate']
    if resume is not None:
        args += ['--resume'] + ([resume] if resume != 'auto' else [])
    return subprocess.run(
        args + ['--cfg-options', *options],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=timeout,
        check=False)


def failing_config(tmp_path, config, **hook_args):
    """A config that adds :class:`FailAtIterationHook` to ``config``."""
    path = tmp_path / f'failing_{osp.basename(config)}'
    path.write_text(
        f'_base_ = [{osp.join(ROOT, config)!r}]\n'
        "custom_imports = dict(imports=['test_exact_resume'], "
        'allow_failed_imports=False)\n'
        'default_hooks = dict(fail=dict('
        f"type='FailAtIterationHook', **{hook_args!r}))\n")
    return str(path)


def logged_iterations(work_dir):
    """iteration -> logged scalars, from every run in ``work_dir`` (later
    runs overwrite earlier ones)."""
    logs = {}
    for path in sorted(glob.glob(osp.join(work_dir, '*', 'vis_data',
                                          'scalars.json'))):
        with open(path) as f:
            for line in f:
                record = json.loads(line)
                if 'iter' in record and 'loss' in ''.join(record):
                    logs[record['iter']] = record
    return logs


def assert_same_curves(reference, resumed, iterations):
    for it in iterations:
        expected, actual = reference[it], resumed[it]
        keys = [k for k in expected if 'loss' in k or k.endswith('.lr')]
        assert keys and set(keys) <= set(actual), (it, sorted(actual))
        for key in keys:
            assert math.isclose(actual[key], expected[key],
                                rel_tol=REL_TOL, abs_tol=1e-9), \
                f'iteration {it}: {key} {actual[key]} != {expected[key]}'


def load(path):
    return torch.load(path, map_location='cpu', weights_only=True)


def assert_same_state(reference, resumed):
    """Weights and buffers (BN statistics, memory bank), both optimisers,
    schedulers and the iteration counter of two checkpoints."""
    expected, actual = load(reference), load(resumed)
    assert actual['meta']['iter'] == expected['meta']['iter']
    assert actual['state_dict'].keys() == expected['state_dict'].keys()
    for key, value in expected['state_dict'].items():
        if isinstance(value, torch.Tensor):
            assert torch.allclose(actual['state_dict'][key], value,
                                  rtol=1e-6, atol=1e-8), key
        else:  # e.g. a module's extra state
            assert actual['state_dict'][key] == value, key
    assert set(actual['optimizer']) == set(expected['optimizer'])
    assert {'architecture', 'generator'} <= set(actual['optimizer'])
    for name, optim_state in expected['optimizer'].items():
        for index, param_state in optim_state['state'].items():
            for key, value in param_state.items():
                assert torch.allclose(
                    torch.as_tensor(
                        actual['optimizer'][name]['state'][index][key]),
                    torch.as_tensor(value), rtol=1e-6, atol=1e-8), \
                    (name, index, key)
    assert actual.get('param_schedulers') == expected.get('param_schedulers')


def tiny(teacher, max_iters, interval, *extra):
    return [f'model.teachers.teacher.ckpt_path={teacher}',
            f'train_cfg.max_iters={max_iters}',
            f'default_hooks.checkpoint.interval={interval}',
            'default_hooks.logger.interval=1', 'log_processor.window_size=1',
            'train_dataloader.batch_size=16', *extra]


def check_ok(proc):
    assert proc.returncode == 0, proc.stderr[-4000:]


def test_dafl_killed_while_saving_resumes_exactly(tmp_path,
                                                  random_lenet5_teacher):
    """SIGKILL with half of iter_6.pth written (max_keep_ckpts=1, so
    mmengine's own hook would already have deleted iter_3.pth): the run
    resumes from iter_3.pth and continues exactly."""
    options = tiny(random_lenet5_teacher, 8, 3,
                   'default_hooks.checkpoint.max_keep_ckpts=1')
    reference_dir = str(tmp_path / 'reference')
    check_ok(train(DAFL, reference_dir, options))

    work_dir = str(tmp_path / 'killed')
    killed = train(failing_config(tmp_path, DAFL, iteration=6,
                                  failure='sigkill_during_save'), work_dir,
                   options)
    assert killed.returncode == -signal.SIGKILL, killed.stderr[-3000:]
    assert sorted(n for n in os.listdir(work_dir) if n.endswith('.pth')) \
        == ['iter_3.pth']
    with open(osp.join(work_dir, 'last_checkpoint')) as f:
        assert f.read() == osp.join(work_dir, 'iter_3.pth')
    leftovers = [n for n in os.listdir(work_dir) if n.endswith('.tmp')]
    assert len(leftovers) == 1 and leftovers[0].startswith('.iter_6.pth')

    resumed = train(DAFL, work_dir, options, resume='auto')
    check_ok(resumed)
    assert 'resumed epoch: 0, iter: 3' in resumed.stdout + resumed.stderr
    assert not [n for n in os.listdir(work_dir) if n.endswith('.tmp')]

    reference = logged_iterations(reference_dir)
    assert sorted(reference) == list(range(1, 9))
    assert_same_curves(reference, logged_iterations(work_dir), range(4, 9))
    assert_same_state(osp.join(reference_dir, 'iter_8.pth'),
                      osp.join(work_dir, 'iter_8.pth'))


def test_adi_killed_between_iterations_resumes_exactly(tmp_path,
                                                       random_lenet5_teacher):
    """ADI draws random numbers every step (jitter, memory-bank sampling):
    only with the restored generator states does the resumed run match.
    Without RandomStateHook the same resume diverges (the check can
    fail)."""
    options = tiny(random_lenet5_teacher, 8, 4,
                   'model.generator.batch_size=16', 'model.generator_iter=3',
                   'model.student_iter=2', 'model.memory_bank.capacity=64')
    reference_dir = str(tmp_path / 'reference')
    check_ok(train(ADI, reference_dir, options))

    work_dir = str(tmp_path / 'killed')
    killed = train(failing_config(tmp_path, ADI, iteration=6), work_dir,
                   options)
    assert killed.returncode == -signal.SIGKILL, killed.stderr[-3000:]
    checkpoint = str(tmp_path / 'iter_4.pth')  # kept for the control run
    shutil.copy(osp.join(work_dir, 'iter_4.pth'), checkpoint)
    assert int(load(checkpoint)['state_dict']['memory_bank.num_stored']) \
        == 64  # 4 batches of 16: the bank is full and must be restored

    check_ok(train(ADI, work_dir, options, resume='auto'))
    reference = logged_iterations(reference_dir)
    assert_same_curves(reference, logged_iterations(work_dir), range(5, 9))
    assert_same_state(osp.join(reference_dir, 'iter_8.pth'),
                      osp.join(work_dir, 'iter_8.pth'))

    control_dir = str(tmp_path / 'no_random_states')
    check_ok(
        train(ADI, control_dir, options + ['default_hooks.random_state=None'],
              resume=checkpoint))
    control = logged_iterations(control_dir)
    with pytest.raises(AssertionError):
        assert_same_curves(reference, control, range(5, 9))


# ------------------------------------------------------------ unit level
def test_atomic_write_failing_mid_write_keeps_the_old_file(tmp_path,
                                                           monkeypatch):
    from mmdfkd.fileio import atomic_write, stale_temporary_files
    from mmengine.fileio import get_file_backend

    target = tmp_path / 'iter_1.pth'
    backend = get_file_backend(
        str(target), backend_args=dict(backend='atomic_local'))
    backend.put(b'old checkpoint', str(target))

    def fail_half_way(fd):
        os.ftruncate(fd, 3)
        raise OSError('disk full')

    monkeypatch.setattr(os, 'fsync', fail_half_way)
    with pytest.raises(OSError, match='disk full'):
        backend.put(b'new checkpoint', str(target))
    with pytest.raises(OSError, match='disk full'):
        atomic_write('new text', str(tmp_path / 'last_checkpoint'))
    monkeypatch.undo()

    assert target.read_bytes() == b'old checkpoint'
    assert sorted(os.listdir(tmp_path)) == ['iter_1.pth']
    assert stale_temporary_files(str(tmp_path)) == []


def test_random_states_round_trip_through_a_safe_checkpoint(tmp_path):
    from mmdfkd.engine.hooks.random_state_hook import (get_random_states,
                                                       set_random_states)
    states = get_random_states()
    torch.save({'random_states': [states]}, tmp_path / 'ckpt.pth')
    expected = (random.random(), np.random.rand(), torch.rand(1).item(),
                np.random.randn(), np.random.randn())

    loaded = load(tmp_path / 'ckpt.pth')['random_states'][0]
    set_random_states(loaded)

    assert (random.random(), np.random.rand(), torch.rand(1).item(),
            np.random.randn(), np.random.randn()) == expected


def test_validation_does_not_shift_the_training_random_stream():
    from mmdfkd.engine.hooks import RandomStateHook
    hook = RandomStateHook()
    expected_state = torch.get_rng_state()

    hook.before_val_epoch(runner=None)
    torch.rand(10)  # e.g. the val dataloader drawing its base seed
    random.random()
    hook.after_val_epoch(runner=None)

    assert torch.equal(torch.get_rng_state(), expected_state)


# ------------------------------------------- methods with their own state
RESUMED_AT = 2  # the reference run's checkpoint of iteration 2
# the methods that keep state beyond networks and optimisers (DAFL, DFAD,
# ZSKT and DFQ keep none; DAFL and ADI are tested above)
STATEFUL_METHODS = ('adadfkd', 'cmi', 'cpnet', 'cudfkd', 'fast', 'gapssg',
                    'nayer', 'ta_dfkd')


def tiny_method_run(method, teacher, max_iters):
    """The config and ``--cfg-options`` values of ``method``'s tiny
    end-to-end run (the ones its own test module uses)."""
    import test_adadfkd
    import test_cmi
    import test_cpnet
    import test_dfq_cudfkd
    import test_e2e_train as e2e
    import test_fast_nayer
    import test_gapssg
    if method in ('fast', 'nayer'):
        config = test_fast_nayer.E2E[method][0]
        options = test_fast_nayer._options(method, teacher, max_iters)
    elif method in ('cmi', 'cpnet', 'gapssg'):
        module = dict(cmi=test_cmi, cpnet=test_cpnet, gapssg=test_gapssg)
        config = module[method].FMNIST_CONFIG
        options = module[method]._options(teacher, max_iters)
    else:
        config = dict(e2e.CONFIGS, adadfkd=test_adadfkd.ADADFKD,
                      **test_dfq_cudfkd.E2E_CONFIGS)[method]
        options = e2e.cfg_options(method, teacher, max_iters)
        if method == 'cudfkd':  # in memory mode: the bank resumes too
            options += test_dfq_cudfkd.CUDFKD_MEMORY_OPTIONS
    assert options[0] == '--cfg-options'
    return config, options[1:]


@pytest.mark.parametrize('method', STATEFUL_METHODS)
def test_every_stateful_method_resumes_exactly(method, tmp_path,
                                               random_lenet5_teacher):
    """Each method's own state (memory and feature banks, curricula,
    queues, noisy layers, re-initialisation and reset schedules,
    meta-generators, mixture fits) is restored: a new process resuming
    the uninterrupted run's iteration-2 checkpoint logs the same losses
    for iterations 3-4 and ends in the same state."""
    config, options = tiny_method_run(method, random_lenet5_teacher, 4)
    options = options + ['log_processor.window_size=1',
                         'default_hooks.checkpoint.max_keep_ckpts=-1']
    reference_dir = str(tmp_path / 'reference')
    check_ok(train(config, reference_dir, options))

    work_dir = str(tmp_path / 'resumed')
    check_ok(train(config, work_dir, options,
                   resume=osp.join(reference_dir,
                                   f'iter_{RESUMED_AT}.pth')))
    reference = logged_iterations(reference_dir)
    assert sorted(reference) == [1, 2, 3, 4]
    resumed = logged_iterations(work_dir)
    assert sorted(resumed) == [3, 4]  # it did not start from scratch
    assert_same_curves(reference, resumed, range(RESUMED_AT + 1, 5))
    assert_same_state(osp.join(reference_dir, 'iter_4.pth'),
                      osp.join(work_dir, 'iter_4.pth'))
    if method == 'cudfkd':  # memory mode: the bank is part of the state
        keys = load(osp.join(work_dir, 'iter_4.pth'))['state_dict']
        assert int(keys['memory_bank.num_seen']) == 4 * 8
