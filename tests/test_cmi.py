"""CMI (Fang et al., IJCAI 2021): the instance-contrastive loss against a
hand-computed value, the instance feature bank (capacity, sampling, state
round trip), the local view (random resized crop), the per-batch generator
re-initialisation with trainable latents and best-iterate selection, and an
end-to-end run through tools/train.py with a resume that restores both
banks. A tiny LeNet pair with random weights keeps every test fast."""
import itertools
import math
import os.path as osp

import pytest
import torch
import torch.nn.functional as F
from mmengine.config import Config

from conftest import ROOT, run_tool
from mmdfkd.engine.optimizers import SeparateOptimWrapperConstructor
from mmdfkd.models.augmentation import SynthesisAugmentation
from mmdfkd.models.augmentation import functional as AF
from mmdfkd.models.losses import InstanceContrastiveLoss
from mmdfkd.models.memory import InstanceFeatureBank
from mmdfkd.registry import MODELS
from mmdfkd.utils import register_all_modules

register_all_modules()

BATCH = 8
FMNIST_CONFIG = 'configs/cmi/cmi_lenet5_lenet5half_1xb128_fashionmnist.py'


# --------------------------------------------------------------------------
# the contrastive loss
def test_contrastive_loss_hand_value():
    """Two instances, tau 0.5. Anchors (lengths 2 and 3: the loss takes
    cosines) a0 ~ (1, 0), a1 ~ (0, 1); keys k0 = (1, 0), k1 = (1, 1):
    logits row 0 = (1, 1/sqrt2) / 0.5 = (2, sqrt2), row 1 = (0, sqrt2), so
    L0 = log(1 + e^(sqrt2 - 2)) = 0.442548 and
    L1 = log(1 + e^-sqrt2) = 0.217622."""
    anchors = torch.tensor([[2.0, 0.0], [0.0, 3.0]], requires_grad=True)
    keys = torch.tensor([[1.0, 0.0], [1.0, 1.0]], requires_grad=True)
    l0 = math.log(1 + math.exp(math.sqrt(2) - 2))
    l1 = math.log(1 + math.exp(-math.sqrt(2)))
    assert l0 == pytest.approx(0.442548, abs=1e-6)
    assert l1 == pytest.approx(0.217622, abs=1e-6)

    loss = InstanceContrastiveLoss(temperature=0.5, loss_weight=0.8)
    # one group: the plain mean
    assert float(loss(anchors, keys).detach()) == pytest.approx(
        0.8 * (l0 + l1) / 2, abs=1e-6)
    # batch of 1 + 1 negative: mean(current) + mean(cached)
    value = loss(anchors, keys, num_current=1)
    assert float(value) == pytest.approx(0.8 * (l0 + l1), abs=1e-6)
    # keys are detached: only the anchors receive gradients
    value.backward()
    assert keys.grad is None
    assert anchors.grad is not None and anchors.grad.abs().sum() > 0
    with pytest.raises(ValueError, match='num_current'):
        loss(anchors, keys, num_current=3)
    with pytest.raises(ValueError, match='temperature'):
        InstanceContrastiveLoss(temperature=0)


# --------------------------------------------------------------------------
# the feature bank
def _rows(values, dim=3):
    return torch.tensor(values, dtype=torch.float32)[:, None].repeat(1, dim)


def _stored_ids(bank):
    return sorted(bank.features[:len(bank), 0].tolist())


def test_feature_bank_capacity_ring_and_sampling():
    bank = InstanceFeatureBank(capacity=5, feature_dim=3)
    assert bank.sample(4).shape == (0, 3)  # empty: no negatives yet
    bank.add(_rows([0, 1, 2]))
    assert len(bank) == 3 and _stored_ids(bank) == [0, 1, 2]
    bank.add(_rows([3, 4, 5, 6]))  # 5 does not divide into batches of 4
    assert len(bank) == 5 and _stored_ids(bank) == [2, 3, 4, 5, 6]
    bank.add(_rows(list(range(10, 17))))  # more rows than capacity
    assert _stored_ids(bank) == [12, 13, 14, 15, 16]
    assert int(bank.num_added) == 14

    picked = bank.sample(3)
    assert picked.shape == (3, 3) and picked.dtype == torch.float32
    assert len(set(picked[:, 0].tolist())) == 3  # distinct rows
    assert set(picked[:, 0].tolist()) <= {12, 13, 14, 15, 16}
    assert sorted(bank.sample(50)[:, 0].tolist()) == [12, 13, 14, 15, 16]
    # every stored row is drawn over many samples (uniform, not a prefix)
    seen = {v for _ in range(30) for v in bank.sample(1)[:, 0].tolist()}
    assert seen == {12, 13, 14, 15, 16}
    with pytest.raises(ValueError, match='rows of 3'):
        bank.add(torch.zeros(2, 4))


def test_feature_bank_state_round_trip():
    bank = InstanceFeatureBank(capacity=6, feature_dim=2, dtype='float16')
    bank.add(torch.randn(4, 2))
    bank.sample(2)
    state = bank.state_dict()
    restored = InstanceFeatureBank(capacity=6, feature_dim=2,
                                   dtype='float16')
    restored.load_state_dict(state)
    assert len(restored) == 4
    assert torch.equal(restored.features, bank.features)
    # the sampling stream continues where the checkpoint left it
    assert torch.equal(restored.sample(3), bank.sample(3))
    other = InstanceFeatureBank(capacity=6, feature_dim=5)
    with pytest.raises(RuntimeError, match='feature_dim'):
        other.load_state_dict(state, strict=False)


# --------------------------------------------------------------------------
# the local view
def test_resized_crop_matches_interpolate_and_identity():
    images = torch.rand(2, 3, 12, 10, requires_grad=True)
    boxes = torch.tensor([[2, 1, 6, 5], [0, 0, 12, 10]])
    out = AF.resized_crop(images, boxes)
    expected = F.interpolate(images[:1, :, 2:8, 1:6], size=(12, 10),
                             mode='bilinear', align_corners=False)
    assert torch.allclose(out[:1], expected, atol=1e-5)
    assert torch.allclose(out[1], images[1], atol=1e-5)  # whole image
    out.sum().backward()
    assert images.grad.abs().sum() > 0


def test_resized_crop_boxes_follow_scale_and_ratio():
    g = torch.Generator().manual_seed(0)
    boxes = AF.draw_resized_crop_boxes(500, 32, 32, (0.25, 1.0),
                                       (3 / 4, 4 / 3), g, torch.device('cpu'))
    y0, x0, h, w = boxes.unbind(1)
    assert bool(((y0 >= 0) & (x0 >= 0) & (y0 + h <= 32) & (x0 + w <= 32)
                 ).all())
    area = (h * w).float() / 1024
    assert float(area.min()) > 0.2 and float(area.max()) <= 1.0
    aspect = w.float() / h.float()
    assert float(aspect.min()) > 0.7 and float(aspect.max()) < 1.4
    assert len({tuple(b) for b in boxes.tolist()}) > 100  # per image


def test_local_view_differs_from_global_view_per_sample():
    """The same image, eight times: every local view is a different crop
    of it and differs from its global view (both drawn per sample)."""
    image = torch.rand(1, 1, 32, 32)
    batch = image.repeat(8, 1, 1, 1)
    global_view = SynthesisAugmentation(crop_padding=4, flip=False)
    local_view = SynthesisAugmentation(
        crop_padding=0, resized_crop=dict(scale=(0.25, 1.0)), flip=False)
    g = torch.Generator().manual_seed(1)
    x_g, x_l = global_view(batch, g), local_view(batch, g)
    assert x_l.shape == batch.shape
    for i in range(8):
        assert not torch.allclose(x_l[i], x_g[i])
    flat = x_l.flatten(1)
    distinct = {tuple(row.tolist()) for row in flat.round(decimals=4)}
    assert len(distinct) == 8
    with pytest.raises(ValueError, match='scale'):
        SynthesisAugmentation(resized_crop=dict(scale=(0.5, 0.2)))
    with pytest.raises(KeyError, match='resized_crop'):
        SynthesisAugmentation(resized_crop=dict(size=3))


# --------------------------------------------------------------------------
# the algorithm
def build_cmi(**overrides):
    cfg = Config.fromfile(osp.join(ROOT, 'configs/_base_/algorithms/cmi.py'))
    model_cfg = cfg.model.to_dict()
    model_cfg.update(
        architecture=dict(
            cfg_path='mmdfkd::_base_/models/lenet5_half_fashionmnist.py'),
        teachers=dict(teacher=dict(build_cfg=dict(
            cfg_path='mmdfkd::_base_/models/lenet5_fashionmnist.py'))),
        data_preprocessor=dict(type='ClsDataPreprocessor', num_classes=10,
                               mean=[72.94], std=[90.0]),
        memory_bank=dict(type='SyntheticMemoryBank', capacity=64),
        feature_bank=dict(type='InstanceFeatureBank', capacity=64),
        num_negatives=12,
        student_batch_size=6,
        generator_iter=3,
        student_iter=2)
    model_cfg['generator'].update(img_size=32, out_channels=1,
                                  hidden_channels=8)
    model_cfg.update(overrides)
    torch.manual_seed(0)
    model = MODELS.build(model_cfg)
    model.init_weights()
    model.train()
    wrappers = {k: v for k, v in cfg.optim_wrapper.items()
                if k != 'constructor'}
    optim = SeparateOptimWrapperConstructor(wrappers)(model)
    return model, optim


def latent_batch(model, seed=0):
    g = torch.Generator().manual_seed(seed)
    draws = model.draws_per_iteration
    return dict(latents=torch.randn(BATCH, draws, 256, generator=g),
                targets=torch.randint(10, (BATCH, draws), generator=g))


def test_generator_reinitialised_every_synthesis_batch(monkeypatch):
    model, optim = build_cmi(synthesis_loops=2)
    assert model.draws_per_iteration == 2  # the student reads the bank
    # the instance feature: BN-input means of LeNet-5 (6+16+120+84)
    assert model.feature_bank.feature_dim == 2 * 226
    assert model.contrastive_head.mlp[0].in_features == 226
    assert model.contrastive_head.mlp[2].out_features == 256

    first_weights = []
    calls = []
    original = model.reinitialize_generator

    def spy(optim_wrapper=None, **kwargs):
        original(optim_wrapper, **kwargs)
        calls.append(int(model.train_iter))
        # a fresh generator optimiser state for every batch
        assert not optim_wrapper.optimizer.state
        first_weights.append(model.generator.fc.weight.detach().clone())

    monkeypatch.setattr(model, 'reinitialize_generator', spy)
    negatives = []
    loss_forward = model.contrastive_loss.forward

    def record(anchors, keys, num_current=None):
        negatives.append(len(anchors) - num_current)
        return loss_forward(anchors, keys, num_current)

    monkeypatch.setattr(model.contrastive_loss, 'forward', record)
    head_before = model.contrastive_head.mlp[0].weight.detach().clone()
    for it in range(2):
        logs = model.train_step(latent_batch(model, it), optim)
    assert calls == [0, 0, 1, 1]  # before each of the two loops
    # new weights every time (N(0, 0.02) as the reference's reset_model)
    for a, b in itertools.pairwise(first_weights):
        assert not torch.equal(a, b)
    assert 0.01 < float(first_weights[0].std()) < 0.03
    # anchors = current batch + min(num_negatives, stored) bank rows
    assert negatives == [0, 0, 0, 8, 8, 8, 12, 12, 12, 12, 12, 12]
    # 4 batches kept in both banks
    assert len(model.memory_bank) == 4 * BATCH
    assert len(model.feature_bank) == 4 * BATCH
    # z left the generator optimiser with its loop; the head's optimiser
    # keeps its state for the whole run
    assert len(optim['generator'].optimizer.param_groups) == 1
    assert optim['contrastive_head'].optimizer.state
    assert not torch.equal(head_before,
                           model.contrastive_head.mlp[0].weight)
    for key in ('generator.loss_bn', 'generator.loss_oh',
                'generator.loss_adv', 'generator.loss_cr',
                'student.loss_kd'):
        assert torch.isfinite(logs[key])


def test_best_iterate_is_kept(monkeypatch):
    """The pool receives the images of the step with the lowest total
    loss (evaluated on those images), with the sorted targets, and the
    latents are optimised along with the generator."""
    model, optim = build_cmi(generator_iter=4, student_iter=0)
    steps = []
    original = model.generator_step

    def spy(latents, targets, optim_wrapper):
        before = latents.detach().clone()
        logs = original(latents, targets, optim_wrapper)
        steps.append((float(logs['generator.loss']),
                      model._step_record['images'].clone(),
                      targets.clone()))
        assert not torch.equal(before, latents)  # z was updated
        return logs

    monkeypatch.setattr(model, 'generator_step', spy)
    model.train_step(latent_batch(model), optim)
    best = min(range(len(steps)), key=lambda i: steps[i][0])
    assert torch.equal(model.memory_bank.images[:BATCH], steps[best][1])
    targets = model.memory_bank.targets[:BATCH]
    assert torch.equal(targets, steps[best][2])
    assert torch.equal(targets, targets.sort().values)


def test_bad_settings_are_named():
    with pytest.raises(ValueError, match='draw_per_synthesis_loop'):
        build_cmi(draw_per_synthesis_loop=False)
    model, optim = build_cmi()
    without_head = {k: optim[k] for k in ('architecture', 'generator')}
    with pytest.raises(KeyError, match='contrastive_head'):
        model.train_step(latent_batch(model), without_head)


# --------------------------------------------------------------------------
# end to end
def _options(teacher, max_iters):
    return [
        '--cfg-options', f'model.teachers.teacher.ckpt_path={teacher}',
        f'train_cfg.max_iters={max_iters}', 'train_cfg.val_interval=2',
        'default_hooks.checkpoint.interval=2',
        'default_hooks.logger.interval=1',
        'val_dataloader.dataset.indices=256', 'val_dataloader.batch_size=128',
        'custom_hooks.0.interval=2', 'train_dataloader.batch_size=16',
        'model.generator_iter=2', 'model.student_iter=2',
        'model.student_batch_size=8', 'model.num_negatives=8',
        'model.memory_bank.capacity=64', 'model.feature_bank.capacity=40'
    ]


def test_train_and_resume_restore_both_banks(tmp_path, random_lenet5_teacher,
                                             fashion_mnist_root):
    work_dir = str(tmp_path / 'cmi')
    run_tool(['tools/train.py', FMNIST_CONFIG, '--work-dir', work_dir,
              *_options(random_lenet5_teacher, 2)])
    first = torch.load(osp.join(work_dir, 'iter_2.pth'), map_location='cpu',
                       weights_only=True)
    assert set(first['optimizer']) == {'architecture', 'generator',
                                       'contrastive_head'}
    state = first['state_dict']
    assert not [k for k in state if k.startswith('teachers.')]
    assert int(state['memory_bank.num_stored']) == 2 * 16
    assert int(state['feature_bank.num_stored']) == 2 * 16
    assert any(k.startswith('contrastive_head.') for k in state)

    run_tool(['tools/train.py', FMNIST_CONFIG, '--work-dir', work_dir,
              '--resume', *_options(random_lenet5_teacher, 4)])
    second = torch.load(osp.join(work_dir, 'iter_4.pth'), map_location='cpu',
                        weights_only=True)
    assert second['meta']['iter'] == 4
    state2 = second['state_dict']
    # the resumed banks hold the first run's batches, then two new ones
    assert int(state2['memory_bank.num_stored']) == 4 * 16
    assert torch.equal(state2['memory_bank.images'][:32],
                       state['memory_bank.images'][:32])
    assert not torch.equal(state2['memory_bank.images'][32:64],
                           state['memory_bank.images'][32:64])
    # the feature bank (capacity 40) wrapped around: batch 3 went to rows
    # 32-39 and 0-7, batch 4 to rows 8-23; rows 24-31 still hold batch 2,
    # restored from the first run's checkpoint
    assert int(state2['feature_bank.num_stored']) == 40
    assert int(state2['feature_bank.num_added']) == 64
    features, old_features = (state2['feature_bank.features'],
                              state['feature_bank.features'])
    assert torch.equal(features[24:32], old_features[24:32])
    assert not torch.equal(features[8:24], old_features[8:24])
