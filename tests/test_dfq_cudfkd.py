"""DFQ and CuDFKD: the self-paced weight, the self-paced KD loss and the
adversarial-weight curriculum against hand-computed values, the
agreement-masked adversarial KL, the CuDFKD generator variant, the DFQ
generator loss term by term, CuDFKD's schedules inside the loop, and tiny
end-to-end runs of both Fashion-MNIST configs through tools/train.py with a
--resume."""
import math
import os.path as osp
import re

import pytest
import test_e2e_train as e2e
import torch
import torch.nn.functional as F
from conftest import ROOT, run_tool
from mmengine.config import Config
from test_algorithm import build, latent_batch
from torch import nn

from mmdfkd.models.generators import DAFLGenerator
from mmdfkd.models.losses import (
    AgreementMaskedKLDivergence,
    InformationEntropyLoss,
    KLDivergence,
    SelfPacedDistillationLoss,
)
from mmdfkd.models.utils import LinearWeightCurriculum, SelfPacedWeight
from mmdfkd.registry import MODELS, TASK_UTILS
from mmdfkd.utils import register_all_modules

register_all_modules()

DFQ = osp.join(ROOT, 'configs/dfq/dfq_lenet5_lenet5half_1xb128_fashionmnist.py')
CUDFKD = osp.join(
    ROOT, 'configs/cudfkd/cudfkd_lenet5_lenet5half_1xb128_fashionmnist.py')
E = math.exp


# --------------------------------------------------------------------------
# SelfPacedWeight: v = (1 + e^-lambda) / (1 + e^(l - lambda))
# --------------------------------------------------------------------------
def test_log_weight_hand_values():
    weight = SelfPacedWeight(lambda_0=2.0, alpha=0.5)
    v = weight(torch.tensor([0.0, 2.0, 4.0]))
    # l = 0: 1; l = lambda: (1 + e^-2) / 2; l = 2 lambda: exactly e^-lambda
    assert v.tolist() == pytest.approx([1.0, 0.5676676416, 0.1353352832])
    weight.step()
    weight.step()  # lambda = 2 + 0.5 * 2 = 3
    assert weight.lam == 3.0
    assert float(weight(torch.tensor(3.0))) == pytest.approx(0.5248935342)


def test_weight_has_no_gradient_and_age_stops_at_max_steps():
    loss = torch.tensor([1.0, 5.0], requires_grad=True)
    weight = SelfPacedWeight(lambda_0=1.0, alpha=1.0, max_steps=2)
    assert not weight(loss).requires_grad
    for _ in range(5):
        weight.step()
    assert int(weight.num_steps) == 5 and weight.lam == 3.0


def test_hard_and_soft_weights():
    losses = torch.tensor([0.5, 1.0, 3.0])
    hard = SelfPacedWeight(lambda_0=2.0, regularizer='hard')
    soft = SelfPacedWeight(lambda_0=2.0, regularizer='soft')
    assert hard(losses).tolist() == [1.0, 1.0, 0.0]
    assert soft(losses).tolist() == [0.75, 0.5, 0.0]
    with pytest.raises(ValueError, match='regularizer'):
        SelfPacedWeight(lambda_0=1.0, regularizer='linear')
    with pytest.raises(ValueError, match='lambda > 0'):
        SelfPacedWeight(lambda_0=0.0, regularizer='hard')(losses)


# --------------------------------------------------------------------------
# SelfPacedDistillationLoss
# --------------------------------------------------------------------------
S = torch.tensor([[1.0, 0.0], [0.0, 0.0]])
T = torch.tensor([[0.0, 0.0], [0.0, 4.0]])  # L1 per sample: 0.5 and 2.0


def _spl(per_sample, **kwargs):
    cfg = {'lambda_0': 2.0, 'alpha': 1e-4}
    cfg.update(kwargs)
    return SelfPacedDistillationLoss(
        distance='l1', per_sample=per_sample, self_paced=cfg)


def test_self_paced_l1_per_sample_hand_value():
    loss = _spl(per_sample=True)
    # v = (1 + e^-2) / (1 + e^(l - 2)) = 0.92822, 0.56767 at lambda_0 = 2:
    # (0.92822 * 0.5 + 0.56767 * 2.0) / 2
    assert float(loss(S, T)) == pytest.approx(0.7997229290)
    assert float(loss.last_weight) == pytest.approx(
        (0.9282211495 + 0.5676676416) / 2)


def test_self_paced_l1_batch_mean_is_the_reference_code():
    loss = _spl(per_sample=False)
    # one weight for the batch-mean loss 1.25: v = 1.13534 / (1 + e^-0.75)
    assert float(loss(S, T)) == pytest.approx(0.7710955408 * 1.25)
    assert float(loss.last_weight) == pytest.approx(0.7710955408)


def test_self_paced_gradient_treats_weights_as_constants():
    preds = S.clone().requires_grad_()
    _spl(per_sample=True)(preds, T).backward()
    v = torch.tensor([0.9282211495, 0.5676676416])
    # d/ds mean_i v_i mean_c |s - t| = v_i sign(s - t) / (N C)
    expected = v[:, None] * torch.sign(S - T) / 4
    torch.testing.assert_close(preds.grad, expected)


def test_self_paced_kl_with_unit_weights_is_plain_kd():
    torch.manual_seed(0)
    s, t = torch.randn(6, 5), torch.randn(6, 5)
    # 'hard' with a huge lambda admits every sample with v = 1
    loss = SelfPacedDistillationLoss(
        distance='kl', tau=4.0,
        self_paced={'lambda_0': 1e6, 'regularizer': 'hard'})
    assert float(loss(s, t)) == pytest.approx(
        float(KLDivergence(tau=4.0)(s, t)), rel=1e-6)


def test_lambda_advances_per_training_call_and_resumes():
    loss = _spl(per_sample=True, alpha=0.5)
    for _ in range(3):
        loss(S, T)
    assert loss.last_lambda == 3.0  # lambda of the 3rd call: 2 + 0.5 * 2
    loss.eval()
    loss(S, T)  # no step outside training
    resumed = _spl(per_sample=True, alpha=0.5)
    resumed.load_state_dict(loss.state_dict())
    assert int(resumed.self_paced.num_steps) == 3
    assert resumed.self_paced.lam == 3.5


# --------------------------------------------------------------------------
# LinearWeightCurriculum
# --------------------------------------------------------------------------
def _reference_adv(epochs, adv0, grad_adv, begin_fraction, end_fraction):
    """The adversarial weight of each epoch in the CuDFKD code: adv0 in
    epoch 0, then get_alpha_adv(type='linear') of the epoch just
    finished."""
    b, e = int(epochs * begin_fraction), int(epochs * end_fraction)
    weights, adv = [], adv0
    for epoch in range(epochs):
        weights.append(adv)
        if b <= epoch < e:
            adv = adv0 + (epoch - b) * grad_adv
        elif epoch >= e:
            adv = adv0 + (e - b) * grad_adv
    return weights


def test_curriculum_hand_values_cifar10_resnet34():
    # the C10 ResNet-34 script: 0 -> +0.5 per epoch, fractions 0.25 / 0.75
    ramp = LinearWeightCurriculum(
        start=0.0, slope=0.5, begin=63, end=188, iters_per_epoch=40)
    assert ramp(0) == 0.0
    assert ramp(64 * 40 - 1) == 0.0  # last iteration of epoch 63
    assert ramp(64 * 40) == 0.5  # epoch 64
    assert ramp(100 * 40 + 39) == 18.5
    assert ramp(188 * 40) == 62.5 == ramp(249 * 40 + 39)


@pytest.mark.parametrize('epochs,adv0,grad,b,e', [(250, 0.0, 0.5, 0.25, 0.75),
                                                  (300, 0.0, 0.15, 0.2, 0.75),
                                                  (15, 1.0, 0.2, 0.25, 0.75)])
def test_curriculum_matches_reference_code(epochs, adv0, grad, b, e):
    ramp = TASK_UTILS.build(
        {'type': 'LinearWeightCurriculum', 'start': adv0, 'slope': grad,
             'begin': int(b * epochs) + 1, 'end': int(e * epochs) + 1,
             'iters_per_epoch': 40})
    ours = [ramp(epoch * 40 + 17) for epoch in range(epochs)]
    assert ours == pytest.approx(
        _reference_adv(epochs, adv0, grad, b, e), abs=1e-12)


def test_curriculum_rejects_bad_arguments():
    with pytest.raises(ValueError, match='precede'):
        LinearWeightCurriculum(start=0, slope=1, begin=5, end=4)
    with pytest.raises(ValueError, match='iters_per_epoch'):
        LinearWeightCurriculum(end=4, iters_per_epoch=0)


# --------------------------------------------------------------------------
# AgreementMaskedKLDivergence and the tempered information entropy
# --------------------------------------------------------------------------
def test_agreement_masked_kl_hand_value_and_mask():
    s = torch.tensor([[2.0, 0.0], [0.0, 1.0]], requires_grad=True)
    t = torch.tensor([[1.0, 0.0], [1.0, 0.0]], requires_grad=True)
    loss = AgreementMaskedKLDivergence(
        tau=1.0, loss_weight=-1.0, teacher_detach=False)(s, t)
    # sample 0 agrees: KL([.731, .269] || [.881, .119]) = 0.082608; sample
    # 1 disagrees and is masked; batch mean over both samples
    assert float(loss.detach()) == pytest.approx(-0.0413038724, rel=1e-5)
    loss.backward()
    assert torch.equal(s.grad[1], torch.zeros(2))
    assert torch.equal(t.grad[1], torch.zeros(2))
    assert s.grad[0].abs().sum() > 0 and t.grad[0].abs().sum() > 0
    # tau scales inputs and multiplies by tau^2, as KLDivergence
    x, y = torch.randn(4, 3), torch.randn(4, 3)
    y[:, 0] += 10
    x[:, 0] += 10  # all agree: the mask is all ones
    assert float(AgreementMaskedKLDivergence(tau=3.0)(x, y)) == \
        pytest.approx(float(KLDivergence(tau=3.0)(x, y)), rel=1e-6)


def test_information_entropy_temperature_hand_value():
    # softmax([2, 0] / 2) = [0.731, 0.269]: sum p ln p = -0.582203
    loss = InformationEntropyLoss(loss_weight=20.0, tau=2.0)
    assert float(loss(torch.tensor([[2.0, 0.0]]))) == pytest.approx(
        20 * -0.5822031089)


# --------------------------------------------------------------------------
# The CuDFKD generator variant of DAFLGenerator
# --------------------------------------------------------------------------
def test_generator_halves_channels_and_normalises_output():
    cfg = Config.fromfile(CUDFKD).model.generator
    cfg.update(hidden_channels=16, latent_dim=6)
    torch.manual_seed(0)
    gen = MODELS.build(cfg)
    convs = [m for m in gen.modules() if isinstance(m, nn.Conv2d)]
    assert [(c.in_channels, c.out_channels) for c in convs] == [(16, 8),
                                                                (8, 4),
                                                                (4, 1)]
    assert [c.bias is None for c in convs] == [True, True, False]
    assert gen.fc.out_features == 16 * 8 * 8
    gen.init_weights()  # the reference's N(0, 0.02) / N(1, 0.02) init
    assert 0.015 < float(gen.fc.weight.detach().std()) < 0.025
    assert float(gen.fc.bias.detach().abs().max()) == 0
    bn_weight = gen.input_bn[0].weight.detach()
    assert 0.9 < float(bn_weight.mean()) < 1.1
    assert float(bn_weight.std()) < 0.05
    z = torch.randn(4, 6)
    gen.eval()
    plain = dict(cfg, output_normalization=None)
    raw = MODELS.build(plain).eval()
    raw.load_state_dict(gen.state_dict())
    with torch.no_grad():
        pixels, normalised = raw(z), gen(z)
    assert 0 <= float(pixels.min()) and float(pixels.max()) <= 1
    torch.testing.assert_close(normalised, (pixels * 255 - 72.94) / 90.0)
    assert 'output_mean' not in gen.state_dict()
    with pytest.raises(ValueError, match='per output channel'):
        DAFLGenerator(img_size=8, latent_dim=6, hidden_channels=8,
                      output_normalization={'mean': [1, 2], 'std': [1, 1]})
    with pytest.raises(KeyError, match='mean'):
        DAFLGenerator(img_size=8, latent_dim=6, hidden_channels=8,
                      output_normalization={'mean': [1, 2, 3]})


# --------------------------------------------------------------------------
# DFQ: the generator loss term by term
# --------------------------------------------------------------------------
def _bn_loss_by_hand(teacher, images):
    stats = []

    def hook(module, inputs, outputs):
        x = inputs[0]
        dims = [0] + list(range(2, x.dim()))
        stats.append((x.mean(dims), x.var(dims, unbiased=False), module))

    handles = [m.register_forward_hook(hook) for m in teacher.modules()
               if isinstance(m, nn.modules.batchnorm._BatchNorm)]
    with torch.no_grad():
        logits = teacher(images, mode='tensor')
    for handle in handles:
        handle.remove()
    assert len(stats) >= 2
    bn = sum(
        torch.linalg.vector_norm(mean - m.running_mean) +
        torch.linalg.vector_norm(var - m.running_var)
        for mean, var, m in stats)
    return float(bn), logits


def test_dfq_generator_loss_terms_and_weights():
    torch.manual_seed(0)
    model, optim, cfg = build(DFQ, student_iter=0)
    losses = model.generator_distiller.distill_losses
    assert {k: (type(v).__name__, v.loss_weight) for k, v in losses.items()
            } == {'loss_bn': ('BNStatisticsLoss', 1.0),
                  'loss_onehot': ('OnehotLikeLoss', 1.0),
                  'loss_balance': ('InformationEntropyLoss', 20.0),
                  'loss_adv': ('KLDivergence', -1.0)}
    assert not losses['loss_adv'].teacher_detach
    assert model.student_iter == 0 and cfg.model.student_iter == 0
    model.train()
    logs = model.train_step(latent_batch(cfg, 16), optim)
    images = model.last_synthetic_batch  # the generator step's batch
    teacher = model.teachers['teacher']
    bn, t = _bn_loss_by_hand(teacher, images)
    with torch.no_grad():  # the student scored them in eval mode
        s = model.architecture.eval()(images, mode='tensor')
    p_bar = F.softmax(t, dim=1).mean(0)
    expected = {
        'loss_bn': bn,
        'loss_onehot': float(F.cross_entropy(t, t.argmax(1))),
        'loss_balance': 20 * float((p_bar * p_bar.log()).sum()),
        'loss_adv': -float(F.kl_div(F.log_softmax(s, 1), F.softmax(t, 1),
                                    reduction='batchmean')),
    }
    for name, value in expected.items():
        assert float(logs[f'generator.{name}']) == pytest.approx(
            value, rel=1e-4, abs=1e-6), name
    assert float(logs['generator.loss']) == pytest.approx(
        sum(expected.values()), rel=1e-4)
    assert expected['loss_adv'] < 0  # a real student: non-zero adversary


# --------------------------------------------------------------------------
# CuDFKD in the loop
# --------------------------------------------------------------------------
def test_cudfkd_adversarial_weight_follows_the_curriculum():
    model, optim, cfg = build(CUDFKD, student_iter=1)
    ramp = cfg.model.loss_weight_schedules.loss_adv
    # 18 epochs: +0.5 per epoch from int(0.25 E) + 1 = 5 to int(0.75 E) + 1
    assert (ramp.begin, ramp.end, ramp.slope) == (5, 14, 0.5)
    adv = model.generator_distiller.distill_losses['loss_adv']
    for epoch, factor in ((0, 0.0), (5, 0.0), (6, 0.5), (14, 4.5),
                          (17, 4.5)):
        model.train_iter.fill_(epoch * 40)
        assert model.apply_loss_weight_schedules() == {
            'loss_adv': pytest.approx(factor)}
        assert adv.loss_weight == pytest.approx(-factor)
    model.train_iter.fill_(7 * 40)
    model.train()
    logs = model.train_step(latent_batch(cfg, 8, num_draws=2), optim)
    assert float(logs['generator.weight_loss_adv']) == pytest.approx(1.0)
    assert float(logs['generator.loss_adv']) <= 0
    with pytest.raises(KeyError, match='not losses of generator_distiller'):
        build(CUDFKD, loss_weight_schedules={
            'loss_avd': {'type': 'LinearWeightCurriculum', 'end': 1}})


def test_cudfkd_student_steps_use_the_generator_in_eval_mode():
    torch.manual_seed(0)
    model, optim, cfg = build(CUDFKD, generator_iter=0, student_iter=3)
    assert cfg.model.generator_train_mode_in_student_step is False
    model.train()
    bn_before = model.generator.input_bn[0].running_mean.clone()
    logs = model.train_step(latent_batch(cfg, 8, num_draws=3), optim)
    # eval mode: the generator's BN running statistics are not updated
    assert torch.equal(model.generator.input_bn[0].running_mean, bn_before)
    assert model.generator.training  # and its mode is restored
    spl = model.distiller.distill_losses['loss_kd'].self_paced
    assert int(spl.num_steps) == 3
    # mean lambda of the three steps: 2 + 1e-4 * (0 + 1 + 2) / 3
    assert float(logs['student.loss_kd_lambda']) == pytest.approx(2.0001)
    assert 0 < float(logs['student.loss_kd_weight']) <= 1


# CuDFKD's memory mode (the code's --memory): every round's batch joins a
# bank as [0, 1] pixels; the student learns on augmented bank samples
CUDFKD_MEMORY = dict(
    memory_bank=dict(type='SyntheticMemoryBank', capacity=20,
                     policy='reservoir'))
CUDFKD_MEMORY_OPTIONS = [
    f'model.memory_bank.{key}={value}'
    for key, value in CUDFKD_MEMORY['memory_bank'].items()
]


def test_cudfkd_memory_mode_stores_pixels_and_trains_on_the_bank():
    torch.manual_seed(0)
    model, optim, cfg = build(CUDFKD, student_iter=3, **CUDFKD_MEMORY)
    model.train()
    seen = []
    original = model.student_augmentation.forward

    def record(images):
        seen.append(images.clone())
        return original(images)

    model.student_augmentation.forward = record
    generator_calls = []
    model.generator.register_forward_hook(
        lambda *args: generator_calls.append(1))
    logs = model.train_step(latent_batch(cfg, 8, num_draws=4), optim)
    bank = model.memory_bank
    assert len(bank) == 8 and float(logs['memory_bank.size']) == 8
    stored, targets = bank.images[:8], bank.targets[:8]
    # [0, 1] pixels whose normalisation is the generator batch the teacher
    # scored (the last synthetic batch of the generator step)
    assert float(stored.min()) >= 0 and float(stored.max()) <= 1
    assert torch.allclose(
        model.normalize(stored), model._last_generated['images'], atol=1e-5)
    assert torch.equal(targets, model._last_generated['targets'])
    # three student steps, each on 8 bank images (all of them: no
    # replacement), augmented then normalised; the generator made only the
    # round's batch
    assert len(seen) == 3 and len(generator_calls) == 1
    for images in seen:
        assert images.shape == (8, *bank.image_shape)
        assert sorted(map(tuple, images.flatten(1).tolist())) == sorted(
            map(tuple, stored.flatten(1).tolist()))
    batch = model.sample_student_batch()
    assert batch['images'].shape == (8, *bank.image_shape)
    assert torch.equal(batch['images'], model.last_synthetic_batch)
    # the view is normalised: crop padding shows as normalised black
    black = float(model.normalize(torch.zeros(1)).flatten()[0])
    assert float(batch['images'].min()) >= black - 1e-5


def test_cudfkd_memory_mode_is_checked_at_build_time():
    with pytest.raises(ValueError, match='generator_iter=1'):
        build(CUDFKD, generator_iter=2, **CUDFKD_MEMORY)
    with pytest.raises(ValueError, match='output_normalization'):
        build(CUDFKD, generator=dict(output_normalization=None),
              **CUDFKD_MEMORY)
    with pytest.raises(ValueError, match="preprocessor's std"):
        build(CUDFKD, generator=dict(output_normalization=dict(
            mean=[72.94], std=[1.0])), **CUDFKD_MEMORY)
    with pytest.raises(ValueError, match='set memory_bank as well'):
        build(CUDFKD, student_augmentation=dict(type='SynthesisAugmentation'))
    model, _, _ = build(CUDFKD)
    assert model.memory_bank is None


# --------------------------------------------------------------------------
# End to end through tools/train.py, with a resume
# --------------------------------------------------------------------------
E2E_CONFIGS = {'dfq': DFQ, 'cudfkd': CUDFKD}
e2e.TINY.update({
    method: ['train_dataloader.batch_size=8', 'model.student_iter=2',
             'train_dataloader.dataset.num_draws=3',
             'model.generator.hidden_channels=16']
    for method in E2E_CONFIGS
})


@pytest.mark.parametrize('method', sorted(E2E_CONFIGS))
def test_train_and_resume(method, tmp_path, random_lenet5_teacher,
                          fashion_mnist_root):
    work_dir = str(tmp_path / method)
    config = E2E_CONFIGS[method]
    run_tool(['tools/train.py', config, '--work-dir', work_dir,
              *e2e.cfg_options(method, random_lenet5_teacher, 2)])
    state = torch.load(osp.join(work_dir, 'iter_2.pth'), weights_only=True)
    keys = state['state_dict']
    assert not [k for k in keys if k.startswith('teachers.')]
    assert set(state['optimizer']) == {'architecture', 'generator'}
    spl_key = 'distiller.distill_losses.loss_kd.self_paced.num_steps'
    if method == 'cudfkd':  # 2 iterations x 2 student steps
        assert int(keys[spl_key]) == 4
    resumed = run_tool(['tools/train.py', config, '--work-dir', work_dir,
                        '--resume',
                        *e2e.cfg_options(method, random_lenet5_teacher, 4)])
    log = resumed.stdout + resumed.stderr
    assert re.search(r'Iter\(train\) \[3/4\]', log), log[-2000:]
    assert 'generator.loss_bn' in log
    state = torch.load(osp.join(work_dir, 'iter_4.pth'), weights_only=True)
    assert state['meta']['iter'] == 4
    if method == 'cudfkd':  # the age continued from the checkpoint
        assert int(state['state_dict'][spl_key]) == 8
        assert 'generator.weight_loss_adv' in log
