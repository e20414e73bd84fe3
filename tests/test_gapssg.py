"""GapSSG (Wang et al., T-PAMI 2024): the reality-gap loss against
hand-computed values (the adaptive weight g, the derived- and inherent-gap
cross-entropies, gradients through the logits only), the growing student
phase (``student_iter_increment``: 4 (t + 1) steps at iteration t), and a
tiny end-to-end run of the Fashion-MNIST config through tools/train.py with
a resume that restores the memory bank. A LeNet pair with random weights
keeps every test fast."""
import math
import os.path as osp

import pytest
import torch
import torch.nn.functional as F
from conftest import run_tool
from mmengine.config import Config

from mmdfkd.engine.optimizers import SeparateOptimWrapperConstructor
from mmdfkd.models.losses import RealityGapLoss
from mmdfkd.registry import MODELS
from mmdfkd.utils import register_all_modules

register_all_modules()

FMNIST_CONFIG = 'configs/gapssg/gapssg_lenet5_lenet5half_1xb128_fashionmnist.py'
LATENT = 8


# --------------------------------------------------------------------------
# the reality-gap loss, by hand
# --------------------------------------------------------------------------
def _logits():
    """Two samples, three classes, targets (0, 1)."""
    t = torch.tensor([[2.0, 0.0, 0.0], [0.0, 1.0, 0.0]], requires_grad=True)
    s = torch.tensor([[0.0, 0.0, 1.0], [1.0, 0.0, 0.0]], requires_grad=True)
    return t, s, torch.tensor([0, 1])


def test_reality_gap_loss_hand_value():
    """softmax(2, 0, 0) = (e^2, 1, 1) / (e^2 + 2), softmax(0, 0, 1) =
    (1, 1, e) / (e + 2): sample 1's largest gap is at class 0,
    e^2/(e^2 + 2) - 1/(e + 2) = 0.575044; sample 2's (t = (0, 1, 0),
    s = (1, 0, 0)) is e/(e + 2) - 1/(e + 2) = 0.364175 (classes 0 and 1),
    so g = 0.469610 and the adaptive weight 0.5 (1 - e^-g) = 0.187377.
    Derived gap, (t - s)/2 = (1, 0, -0.5) and (-0.5, 0.5, 0):
    CE = log(1 + e^-1 + e^-1.5) = 0.464369 and log(1 + e^-1 + e^-0.5) =
    0.680270, mean 0.572319. Inherent gap, t + s = (2, 0, 1) and (1, 1, 0):
    CE = log(1 + e^-2 + e^-1) = 0.407606 and log(2 + e^-1) = 0.861995,
    mean 0.634800. L = 0.187377 (0.572319 + 0.2 * 0.634800) = 0.131029."""
    e = math.e
    gap1 = e**2 / (e**2 + 2) - 1 / (e + 2)
    gap2 = (e - 1) / (e + 2)
    g = (gap1 + gap2) / 2
    assert g == pytest.approx(0.469610, abs=1e-6)
    weight = 0.5 * (1 - math.exp(-g))
    derived = (math.log(1 + e**-1 + e**-1.5) + math.log(1 + e**-1 + e**-0.5)) / 2
    inherent = (math.log(1 + e**-2 + e**-1) + math.log(2 + e**-1)) / 2
    assert derived == pytest.approx(0.572319, abs=1e-6)
    assert inherent == pytest.approx(0.634800, abs=1e-6)
    expected = weight * (derived + 0.2 * inherent)
    assert expected == pytest.approx(0.131029, abs=1e-6)

    t, s, y = _logits()
    loss = RealityGapLoss()
    assert float(loss.probability_gap(s, t)) == pytest.approx(g, abs=1e-6)
    assert float(loss(s, t, y).detach()) == pytest.approx(expected, abs=1e-6)
    # the arguments: adaptive-weight scale, inherent-gap weight, loss weight
    custom = RealityGapLoss(adaptive_weight_scale=1.0, inherent_gap_weight=0.5,
                            loss_weight=2.0)
    assert float(custom(s, t, y).detach()) == pytest.approx(
        2 * (1 - math.exp(-g)) * (derived + 0.5 * inherent), abs=1e-6)
    # no gap, no loss: identical logits give g = 0
    assert float(loss(t, t, y).detach()) == 0.0


def test_reality_gap_loss_gradients_reach_both_logits_not_through_g():
    """With W = 0.5 (1 - e^-g) held constant and CE'(z) = (softmax(z) -
    onehot(y)) / N: dL/dt = W (d/2 + 0.2 i), dL/ds = W (-d/2 + 0.2 i), with
    d = CE'((t - s)/2) and i = CE'(t + s). A gradient through g (not
    detached) would add terms and fail the comparison."""
    t, s, y = _logits()
    loss = RealityGapLoss()
    loss(s, t, y).backward()
    g = float(loss.probability_gap(s, t))
    weight = 0.5 * (1 - math.exp(-g))
    onehot = F.one_hot(y, 3).float()
    with torch.no_grad():
        d = ((t - s) / 2).softmax(dim=1) - onehot
        i = (t + s).softmax(dim=1) - onehot
        grad_t = weight * (d / 2 + 0.2 * i) / 2
        grad_s = weight * (-d / 2 + 0.2 * i) / 2
    torch.testing.assert_close(t.grad, grad_t)
    torch.testing.assert_close(s.grad, grad_s)


def test_reality_gap_loss_argument_checks():
    with pytest.raises(ValueError, match='inherent_gap_weight'):
        RealityGapLoss(inherent_gap_weight=-0.2)
    with pytest.raises(ValueError, match='adaptive_weight_scale'):
        RealityGapLoss(adaptive_weight_scale=float('nan'))
    t, _, y = _logits()
    with pytest.raises(ValueError, match='differ in shape'):
        RealityGapLoss()(t[:, :2], t, y)


# --------------------------------------------------------------------------
# the growing student phase
# --------------------------------------------------------------------------
def _recipe():
    """The shipped recipe on a random LeNet pair, sized for a unit test."""
    cfg = Config.fromfile(osp.join(
        osp.dirname(osp.dirname(osp.abspath(__file__))), FMNIST_CONFIG))
    model = cfg.model.to_dict()
    model['teachers']['teacher']['ckpt_path'] = None
    model['generator'].update(latent_dim=LATENT, hidden_channels=8)
    model.update(generator_iter=2, student_batch_size=8)
    return model


def _build(**overrides):
    cfg = _recipe()
    cfg.update(overrides)
    torch.manual_seed(0)
    model = MODELS.build(cfg)
    model.init_weights()
    model.train()
    optim = SeparateOptimWrapperConstructor({
        'architecture': {'optimizer': {'type': 'SGD', 'lr': 0.01}},
        'generator': {'optimizer': {'type': 'Adam', 'lr': 2e-3}}})(model)
    return model, optim


def _latents(model, seed, batch=8):
    g = torch.Generator().manual_seed(seed)
    draws = model.draws_per_iteration
    return {'latents': torch.randn(batch, draws, LATENT, generator=g),
            'targets': torch.randint(10, (batch, draws), generator=g)}


def test_student_steps_grow_by_the_increment(monkeypatch):
    """GapSSG's 2*2*(epoch+1): 4, 8, 12 student steps at iterations 0-2;
    one synthesised batch per iteration enters the bank."""
    model, optim = _build()
    assert (model.student_iter, model.student_iter_increment) == (4, 4)
    assert model.reinit_generator_every_loop and model.draws_per_iteration == 1
    steps = []
    original = model.student_step

    def count(batch, wrapper):
        steps[-1] += 1
        return original(batch, wrapper)

    monkeypatch.setattr(model, 'student_step', count)
    for it in range(3):
        steps.append(0)
        logs = model.train_step(_latents(model, it), optim)
        assert 'generator.loss_gap' in logs and 'student.loss_kd' in logs
    assert steps == [4, 8, 12]
    assert len(model.memory_bank) == 3 * 8


def test_student_iter_increment_defaults_and_checks(monkeypatch):
    # increment 0 (the default of every other method): a constant phase
    model, optim = _build(student_iter=3, student_iter_increment=0)
    calls = []
    monkeypatch.setattr(model, 'student_step',
                        lambda batch, wrapper: calls.append(1) or {})
    for it in range(2):
        model.train_step(_latents(model, it), optim)
    assert len(calls) == 6
    with pytest.raises(ValueError, match='student_iter_increment'):
        _build(student_iter_increment=-1)
    # a student that draws fresh latents cannot grow: the latent batch
    # holds a fixed number of draws
    base = _recipe()
    for key in ('memory_bank', 'synthesis_augmentation', 'latent_optimizer',
                'student_batch_size'):
        base.pop(key)
    base['type'] = 'DataFreeDistillation'
    with pytest.raises(ValueError, match='memory bank'):
        _ = MODELS.build(base).draws_per_iteration


# --------------------------------------------------------------------------
# end to end through tools/train.py, with a resume
# --------------------------------------------------------------------------
def _options(teacher, max_iters):
    return [
        '--cfg-options', f'model.teachers.teacher.ckpt_path={teacher}',
        f'train_cfg.max_iters={max_iters}', 'train_cfg.val_interval=2',
        'default_hooks.checkpoint.interval=2',
        'default_hooks.logger.interval=1', 'custom_hooks.0.interval=2',
        'val_dataloader.dataset.indices=128', 'val_dataloader.batch_size=128',
        'train_dataloader.batch_size=16', 'model.generator_iter=2',
        'model.student_batch_size=16', 'model.memory_bank.capacity=256'
    ]


def test_train_and_resume_restores_the_bank(tmp_path, random_lenet5_teacher,
                                            fashion_mnist_root):
    work_dir = str(tmp_path / 'gapssg')
    run_tool(['tools/train.py', FMNIST_CONFIG, '--work-dir', work_dir,
              *_options(random_lenet5_teacher, 2)])
    first = torch.load(osp.join(work_dir, 'iter_2.pth'), map_location='cpu',
                       weights_only=True)['state_dict']
    assert not [k for k in first if k.startswith('teachers.')]
    assert int(first['memory_bank.num_stored']) == 32
    assert int(first['train_iter']) == 2

    resumed = run_tool(['tools/train.py', FMNIST_CONFIG, '--work-dir',
                        work_dir, '--resume',
                        *_options(random_lenet5_teacher, 4)])
    log = resumed.stdout + resumed.stderr
    assert 'Iter(train) [3/4]' in log and 'generator.loss_gap' in log
    state = torch.load(osp.join(work_dir, 'iter_4.pth'), map_location='cpu',
                       weights_only=True)['state_dict']
    assert int(state['memory_bank.num_stored']) == 64
    # the resumed run continued the checkpoint's bank (FIFO, not full)
    torch.testing.assert_close(state['memory_bank.images'][:32],
                               first['memory_bank.images'][:32])
    assert torch.equal(state['memory_bank.targets'][:32],
                       first['memory_bank.targets'][:32])
