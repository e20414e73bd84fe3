"""CollapseGuardHook: each failure is forced (a generator that turns
constant, a NaN loss, a student far from the teacher) and each action is
checked on a real (tiny) DAFL run in this process."""
import copy
import json
import os.path as osp

import pytest
import torch
from mmengine.config import Config
from mmengine.hooks import Hook
from mmengine.runner import Runner
from torch import nn

from conftest import ROOT
from mmdfkd.engine.hooks import CollapseGuardHook, TrainingCollapseError
from mmdfkd.models.generators import DAFLGenerator
from mmdfkd.models.utils import build_classifier
from mmdfkd.registry import HOOKS, MODELS
from mmdfkd.utils import register_all_modules

register_all_modules(init_default_scope=False)

DAFL = osp.join(ROOT,
                'configs/dafl/dafl_lenet5_lenet5half_1xb128_fashionmnist.py')


@MODELS.register_module(force=True)
class ScriptedGenerator(DAFLGenerator):
    """DAFL's generator that, from its ``collapse_from``-th call on, only
    makes blank images (one teacher class: mode collapse), or from its
    ``nan_from``-th call on NaN images. DAFL calls it once per iteration,
    so the call number is the iteration."""

    def __init__(self, collapse_from=None, nan_from=None, **kwargs):
        super().__init__(**kwargs)
        self.collapse_from = collapse_from
        self.nan_from = nan_from
        self.calls = 0

    def forward(self, latents, targets=None):
        self.calls += 1
        images = super().forward(latents, targets)
        if self.collapse_from and self.calls >= self.collapse_from:
            images = images * 0  # still differentiable
        if self.nan_from and self.calls >= self.nan_from:
            images = images * float('nan')
        return images


@HOOKS.register_module(force=True)
class StateProbeHook(Hook):
    """Copies the student, the generator and the size of the generator's
    optimiser state after every iteration, at the priority the config gives
    it (before or after the guard's ``ABOVE_NORMAL``)."""

    def __init__(self, name):
        self.name = name
        self.states = {}

    def after_train_iter(self, runner, batch_idx, data_batch=None,
                         outputs=None):
        model = runner.model
        self.states[runner.iter + 1] = dict(
            student=copy.deepcopy(model.architecture.state_dict()),
            generator=copy.deepcopy(model.generator.state_dict()),
            generator_optim_state=len(
                runner.optim_wrapper['generator'].optimizer.state))


def save_diverse_teacher(path):
    """Save a random LeNet-5 whose BN statistics and class biases are
    calibrated on noise, so that it spreads synthetic (and real) images
    over all classes (an uncalibrated random network puts them all in one
    class); return the path."""
    torch.manual_seed(0)
    teacher = build_classifier(
        Config.fromfile(
            osp.join(ROOT, 'configs/_base_/models/lenet5_fashionmnist.py'))
        .model)
    norms = [m for m in teacher.modules()
             if isinstance(m, nn.modules.batchnorm._BatchNorm)]
    images = torch.randn(512, 1, 32, 32)
    with torch.no_grad():
        for norm in norms:
            norm.reset_running_stats()
            norm.momentum = None  # cumulative average over the batch
        teacher.train()(images, mode='tensor')
        logits = teacher.eval()(images, mode='tensor')
        teacher.head.fc.bias -= logits.mean(dim=0)
    torch.save({'state_dict': teacher.state_dict()}, path)
    return str(path)


@pytest.fixture(scope='module')
def diverse_teacher(tmp_path_factory):
    return save_diverse_teacher(
        tmp_path_factory.mktemp('teacher') / 'diverse_lenet5.pth')


def train(tmp_path, teacher, guard, max_iters, collapse_from=None,
          nan_from=None):
    """Run tiny DAFL with ``guard``; return (runner, guard, probes, error)."""
    cfg = Config.fromfile(DAFL)
    cfg.work_dir = str(tmp_path / 'work')
    cfg.experiment_name = tmp_path.name
    cfg.model.teachers.teacher.ckpt_path = teacher
    cfg.model.generator.update(
        type='ScriptedGenerator', collapse_from=collapse_from,
        nan_from=nan_from)
    cfg.train_dataloader.batch_size = 16
    cfg.train_cfg = dict(type='IterBasedTrainLoop', max_iters=max_iters)
    cfg.val_cfg = cfg.val_dataloader = cfg.val_evaluator = None
    cfg.default_hooks.checkpoint.update(interval=2, max_keep_ckpts=3,
                                        save_best=None)
    cfg.default_hooks.logger.interval = 1
    cfg.log_processor.window_size = 1
    cfg.default_hooks.collapse_guard = dict(type='CollapseGuardHook',
                                            **guard)
    cfg.custom_hooks = [
        dict(type='StateProbeHook', name='before', priority='HIGH'),
        dict(type='StateProbeHook', name='after', priority='NORMAL')
    ]
    runner = Runner.from_cfg(cfg)
    error = None
    try:
        runner.train()
    except TrainingCollapseError as caught:
        error = caught
    guard = next(h for h in runner.hooks if isinstance(h, CollapseGuardHook))
    probes = {h.name: h.states for h in runner.hooks
              if isinstance(h, StateProbeHook)}
    return runner, guard, probes['before'], probes['after'], error


def log_text(runner):
    with open(osp.join(runner.log_dir, f'{runner.timestamp}.log')) as f:
        return f.read()


def logged_scalars(runner):
    with open(osp.join(runner.log_dir, 'vis_data', 'scalars.json')) as f:
        return {r['iter']: r for r in map(json.loads, f) if 'iter' in r}


def states_equal(a, b):
    return a.keys() == b.keys() and all(
        torch.equal(a[k], b[k]) for k in a if torch.is_tensor(a[k]))


def load_state(path):
    return torch.load(path, map_location='cpu', weights_only=True)


# ------------------------------------------------------------ class entropy
def test_mode_collapse_is_logged_and_warned(tmp_path, diverse_teacher):
    runner, guard, _, _, error = train(
        tmp_path, diverse_teacher,
        dict(interval=1, window=1, min_class_entropy=0.2), max_iters=4,
        collapse_from=3)

    assert error is None
    assert [(it, metric, value, action)
            for it, metric, value, action in guard.events] == [
                (3, 'class_entropy', 0.0, 'warn'),
                (4, 'class_entropy', 0.0, 'warn')]
    scalars = logged_scalars(runner)
    assert all(scalars[it]['collapse_guard/class_entropy'] > 0.5
               for it in (1, 2))
    assert all(scalars[it]['collapse_guard/class_entropy'] == 0
               for it in (3, 4))
    assert all(0 <= scalars[it]['collapse_guard/agreement'] <= 1
               for it in range(1, 5))
    assert ('class_entropy = 0.0000 is below the threshold 0.2 at '
            'iteration 3') in log_text(runner)


def test_window_spans_recent_batches(tmp_path, diverse_teacher):
    """Over 3 batches, two collapsed ones still leave entropy from the
    diverse one; the third collapsed batch drops it to 0."""
    runner, guard, _, _, _ = train(
        tmp_path, diverse_teacher, dict(interval=1, window=3), max_iters=5,
        collapse_from=3)
    entropy = {it: r['collapse_guard/class_entropy']
               for it, r in logged_scalars(runner).items()}
    assert entropy[3] > 0 and entropy[4] > 0 and entropy[5] == 0
    assert entropy[4] < entropy[3]
    assert guard.events == []  # no threshold: only logged


def test_mode_collapse_stops_with_metric_value_threshold_iteration(
        tmp_path, diverse_teacher):
    _, _, _, _, error = train(
        tmp_path, diverse_teacher,
        dict(interval=1, window=1, min_class_entropy=0.2,
             class_entropy_action='stop'), max_iters=6, collapse_from=3)

    assert error is not None
    assert str(error).startswith(
        'class_entropy = 0.0000 is below the threshold 0.2 at iteration 3')
    assert 'mode collapse' in str(error)


def test_mode_collapse_reinitialises_the_generator(tmp_path,
                                                   diverse_teacher):
    _, guard, before, after, error = train(
        tmp_path, diverse_teacher,
        dict(interval=1, window=1, min_class_entropy=0.2,
             class_entropy_action='reinit_generator', max_recoveries=1),
        max_iters=6, collapse_from=3)

    assert before[3]['generator_optim_state'] > 0
    assert after[3]['generator_optim_state'] == 0  # Adam state cleared
    changed = [k for k, v in before[3]['generator'].items()
               if k.endswith('weight') and not torch.equal(
                   v, after[3]['generator'][k])]
    assert 'fc.weight' in changed and 'block2.3.weight' in changed
    assert states_equal(before[3]['student'], after[3]['student'])
    # this scripted generator collapses again: the second time it stops
    assert [e[0] for e in guard.events] == [3, 4]
    assert 'again after 1 recoveries (max_recoveries=1)' in str(error)


def test_mode_collapse_rolls_back_to_the_last_good_checkpoint(
        tmp_path, diverse_teacher):
    runner, guard, before, after, error = train(
        tmp_path, diverse_teacher,
        dict(interval=1, window=1, min_class_entropy=0.2,
             class_entropy_action='rollback'), max_iters=5, collapse_from=5)

    assert error is None
    good = osp.join(runner.work_dir, 'iter_4.pth')
    assert guard.good_checkpoint == good
    assert not states_equal(before[5]['student'], after[5]['student'])
    # iter_5.pth is written after the guard acted at iteration 5
    expected, actual = load_state(good), load_state(
        osp.join(runner.work_dir, 'iter_5.pth'))
    assert states_equal(expected['state_dict'], actual['state_dict'])
    for name in ('architecture', 'generator'):
        for index, param_state in expected['optimizer'][name][
                'state'].items():
            assert states_equal(
                param_state, actual['optimizer'][name]['state'][index])
    assert f'rolled back model and optimiser states to {good}' in log_text(
        runner)


def test_rollback_without_a_good_checkpoint_stops(tmp_path,
                                                  diverse_teacher):
    _, _, _, _, error = train(
        tmp_path, diverse_teacher,
        dict(interval=1, window=1, min_class_entropy=0.2,
             class_entropy_action='rollback'), max_iters=3, collapse_from=1)
    assert 'cannot roll back at iteration 1 (class_entropy): no checkpoint ' \
        'was saved while every check passed' in str(error)


# ------------------------------------------------------------ agreement
def test_low_agreement_is_acted_on_after_begin(tmp_path, diverse_teacher):
    _, guard, _, _, error = train(
        tmp_path, diverse_teacher,
        dict(interval=1, min_agreement=1.0, agreement_action='stop',
             begin=2), max_iters=4)
    # a fresh student does not agree everywhere; no action before `begin`
    assert guard.events[0][:2] == (3, 'agreement')
    assert 'agreement = ' in str(error)
    assert 'is below the threshold 1.0 at iteration 3' in str(error)


# ------------------------------------------------------------ NaN losses
def test_nan_loss_stops_naming_the_iteration(tmp_path, diverse_teacher):
    _, _, _, _, error = train(
        tmp_path, diverse_teacher, dict(nonfinite_action='stop'),
        max_iters=5, nan_from=3)
    message = str(error)
    assert message.startswith('non-finite loss at iteration 3 (must be a '
                              'finite value)')
    assert 'the generator loss became nan' in message


def test_nan_loss_warn_skips_the_update(tmp_path, diverse_teacher):
    runner, guard, _, after, error = train(
        tmp_path, diverse_teacher, dict(nonfinite_action='warn'),
        max_iters=4, nan_from=3)

    assert error is None
    assert [e[:2] for e in guard.events] == [(3, 'loss'), (4, 'loss')]
    # neither network was updated by the NaN iterations (only the
    # generator's BN statistics saw the batches, before the NaN)
    assert states_equal(after[2]['student'], after[4]['student'])
    assert states_equal(
        *({k: v for k, v in after[it]['generator'].items()
           if 'running' not in k and 'num_batches' not in k}
          for it in (2, 4)))
    scalars = logged_scalars(runner)
    assert [scalars[it]['collapse_guard/nonfinite_loss']
            for it in range(1, 5)] == [0, 0, 1, 1]


def test_nan_loss_rolls_back(tmp_path, diverse_teacher):
    runner, guard, _, after, error = train(
        tmp_path, diverse_teacher, dict(nonfinite_action='rollback'),
        max_iters=5, nan_from=5)
    assert error is None and [e[:2] for e in guard.events] == [(5, 'loss')]
    checkpoint = load_state(osp.join(runner.work_dir, 'iter_4.pth'))
    assert states_equal(
        {k[len('architecture.'):]: v
         for k, v in checkpoint['state_dict'].items()
         if k.startswith('architecture.')}, after[5]['student'])


# ------------------------------------------------------------ arguments
@pytest.mark.parametrize('kwargs, message', [
    (dict(nonfinite_action='ignore'), 'nonfinite_action must be one of'),
    (dict(min_class_entropy=2.0), r'min_class_entropy must lie in \[0, 1\]'),
    (dict(interval=0), 'interval must be a positive int'),
])
def test_bad_arguments_are_named(kwargs, message):
    with pytest.raises(ValueError, match=message):
        CollapseGuardHook(**kwargs)
