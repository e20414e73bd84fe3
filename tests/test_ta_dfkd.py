"""TA-DFKD (Shin & Choi, AAAI 2024): the torch Gaussian mixture against
scikit-learn, the reference form of the JS adversarial loss, the training
view augmentation, the teacher's sample selection, the student batch of
exactly B kept images and a generator loss without a class prior. The
end-to-end run through tools/train.py (with a resume and tools/test.py) is
in tests/test_e2e_train.py."""
import math
import os.path as osp
import warnings

import numpy as np
import pytest
import torch
from conftest import ROOT
from mmengine.config import Config
from mmengine.optim import OptimWrapper
from sklearn.exceptions import ConvergenceWarning
from sklearn.mixture import GaussianMixture
from torch import nn

from mmdfkd.models.algorithms import TADFKDDistillation
from mmdfkd.models.algorithms.ta_dfkd import random_crop_flip
from mmdfkd.models.losses import JSDivergence
from mmdfkd.models.utils import GaussianMixture1D
from mmdfkd.registry import MODELS
from mmdfkd.utils import register_all_modules

register_all_modules()

CONFIG = osp.join(
    ROOT, 'configs/ta_dfkd/ta_dfkd_lenet5_lenet5half_1xb256_fashionmnist.py')


# --------------------------------------------------------------------------
# GaussianMixture1D against scikit-learn
# --------------------------------------------------------------------------
def _min_max(x):
    return (x - x.min()) / (x.max() - x.min())


def _sklearn_fit(x, random_state=0):
    """The reference's fit: GaussianMixture(2, max_iter=10, tol=1e-2,
    reg_covar=5e-4) on the column vector, posterior of the low mean."""
    gmm = GaussianMixture(
        n_components=2, max_iter=10, tol=1e-2, reg_covar=5e-4,
        random_state=random_state)
    with warnings.catch_warnings():
        warnings.simplefilter('ignore', ConvergenceWarning)
        gmm.fit(x[:, None])
    posterior = gmm.predict_proba(x[:, None])[:, gmm.means_.argmin()]
    return gmm, posterior


def _separated_sample():
    rng = np.random.default_rng(0)
    return _min_max(
        np.concatenate([rng.normal(0.1, 0.05, 600),
                        rng.normal(0.7, 0.1, 424)]))


def test_gmm_matches_sklearn_on_separated_sample():
    x = _separated_sample()
    gmm, expected = _sklearn_fit(x)
    ours = GaussianMixture1D(max_iter=10, tol=1e-2, reg_covar=5e-4)
    posterior = ours.low_mean_posterior(torch.from_numpy(x)).numpy()
    # same initial partition, same EM: equal up to rounding
    np.testing.assert_allclose(posterior, expected, atol=1e-9)
    np.testing.assert_allclose(
        np.sort(ours.means_.numpy()), np.sort(gmm.means_.ravel()), atol=1e-9)
    np.testing.assert_allclose(
        np.sort(ours.variances_.numpy()),
        np.sort(gmm.covariances_.ravel()), atol=1e-9)
    assert ours.n_iter_ == gmm.n_iter_
    assert ours.converged_ == gmm.converged_
    np.testing.assert_array_equal(posterior > 0.5, expected > 0.5)
    assert 590 < (posterior > 0.5).sum() < 610  # the low group is kept


@pytest.mark.parametrize('sample', ['overlapping', 'exponential', 'beta'])
def test_gmm_is_one_of_sklearns_fits_on_loss_like_samples(sample):
    """Where the two groups overlap, scikit-learn's k-means initialisation
    (k-means++ and Lloyd with a tolerance) depends on its random state and
    may stop a few points away from the optimal 2-means split we start
    from. Our fit must equal one of its fits (random states 0-5) up to
    rounding, stay within 0.06 of every one of them (the stated tolerance)
    and disagree with any of them on no more kept samples than they
    disagree among themselves."""
    rng = np.random.default_rng(1)
    x = _min_max({
        'overlapping':
        np.concatenate([rng.normal(0.3, 0.15, 600),
                        rng.normal(0.6, 0.15, 400)]),
        'exponential': rng.exponential(1.0, 1024),
        'beta': rng.beta(0.5, 3.0, 1024),
    }[sample])
    fits = [_sklearn_fit(x, random_state)[1] for random_state in range(6)]
    posterior = GaussianMixture1D().low_mean_posterior(
        torch.from_numpy(x)).numpy()
    gaps = [np.abs(posterior - fit).max() for fit in fits]
    assert min(gaps) < 1e-9
    assert max(gaps) < 0.06

    def disagreement(a, b):
        return int(((a > 0.5) != (b > 0.5)).sum())

    sklearn_spread = max(disagreement(a, b) for a in fits for b in fits)
    assert max(disagreement(posterior, fit)
               for fit in fits) <= sklearn_spread <= len(x) // 50


def test_gmm_initial_split_is_optimal_two_means():
    x = torch.tensor([0.0, 1.0, 0.1, 0.9, 0.2, 0.85], dtype=torch.float64)
    resp = GaussianMixture1D.two_means_split(x)
    assert resp[:, 1].tolist() == [0, 1, 0, 1, 0, 1]
    # equal values stay in one group
    x = torch.tensor([0.0, 0.0, 0.0, 1.0, 1.0], dtype=torch.float64)
    assert GaussianMixture1D.two_means_split(x)[:, 1].tolist() == [
        0, 0, 0, 1, 1
    ]


def test_gmm_rejects_degenerate_input():
    with pytest.raises(ValueError, match='two distinct values'):
        GaussianMixture1D().fit(torch.ones(8))
    with pytest.raises(RuntimeError, match='fit'):
        GaussianMixture1D().predict_proba(torch.rand(4))
    with pytest.raises(ValueError, match='max_iter'):
        GaussianMixture1D(max_iter=0)


# --------------------------------------------------------------------------
# JSDivergence options: the reference's 1 - clamp(JS, 0, 1)
# --------------------------------------------------------------------------
def _softmax(row, tau):
    exps = [math.exp(v / tau) for v in row]
    return [e / sum(exps) for e in exps]


def _reference_js(s_rows, t_rows, tau=3.0, lo=0.01, hi=0.99):
    """The TA-DFKD code in plain Python: m from the unclamped p, q, then
    p, q, m clamped; 0.5 * (KLDivLoss()(log p, m) + KLDivLoss()(log q, m))
    with the element-wise mean; 1 - clamp(js, 0, 1)."""
    total, count = 0.0, 0
    for s, t in zip(s_rows, t_rows):
        p, q = _softmax(s, tau), _softmax(t, tau)
        m = [(a + b) / 2 for a, b in zip(p, q)]
        p, q, m = ([min(max(v, lo), hi) for v in d] for d in (p, q, m))
        for pc, qc, mc in zip(p, q, m):
            total += mc * (math.log(mc) - math.log(pc))
            total += mc * (math.log(mc) - math.log(qc))
            count += 1
    js = 0.5 * total / count
    return 1 - min(max(js, 0.0), 1.0)


def test_js_reproduces_reference_code():
    s = [[4.0, 0.0, -2.0, 1.0], [0.0, 9.0, 0.0, 0.0]]
    t = [[-1.0, 3.0, 0.0, 0.5], [8.0, 0.0, 0.0, 1.0]]
    loss = JSDivergence(
        tau=3.0, prob_clamp=(0.01, 0.99), reduction='mean',
        kl_direction='from_mixture', complement=True)(
            torch.tensor(s, dtype=torch.float64),
            torch.tensor(t, dtype=torch.float64))
    assert loss.item() == pytest.approx(_reference_js(s, t), abs=1e-12)


def test_js_mean_reduction_divides_by_classes():
    s = torch.tensor([[1.0, 2.0, 3.0], [0.0, 0.0, 1.0]])
    t = torch.tensor([[3.0, 1.0, 0.0], [0.5, -0.5, 2.0]])
    batchmean = JSDivergence(tau=1.0)(s, t)
    mean = JSDivergence(tau=1.0, reduction='mean')(s, t)
    assert mean.item() == pytest.approx(batchmean.item() / 3, rel=1e-6)
    complement = JSDivergence(tau=1.0, complement=True, loss_weight=2.0)(s, t)
    assert complement.item() == pytest.approx(2 * (1 - batchmean.item()),
                                              rel=1e-6)


def test_js_complement_saturates_without_gradient():
    # a divergence above 1 (batchmean, reverse KL, clamped) is clamped to 1:
    # the loss is 0 and gives the generator no gradient, as in the code
    s = torch.tensor([[30.0, 0.0, 0.0]], requires_grad=True)
    t = torch.tensor([[0.0, 30.0, 0.0]])
    loss_fn = JSDivergence(
        tau=1.0, prob_clamp=(0.01, 0.99), kl_direction='from_mixture',
        complement=True)
    loss = loss_fn(s, t)
    assert loss.item() == 0.0
    loss.backward()
    assert s.grad.abs().sum() == 0
    with pytest.raises(ValueError, match='kl_direction'):
        JSDivergence(kl_direction='sideways')


# --------------------------------------------------------------------------
# training view augmentation
# --------------------------------------------------------------------------
def _windows(images, padding):
    """Every (dy, dx) crop of the zero-padded images."""
    padded = torch.nn.functional.pad(images, (padding, ) * 4)
    h, w = images.shape[-2:]
    return {(dy, dx): padded[..., dy:dy + h, dx:dx + w]
            for dy in range(2 * padding + 1) for dx in range(2 * padding + 1)}


def _offset_of(out, windows, i):
    found = [k for k, win in windows.items() if torch.equal(out[i], win[i])]
    assert len(found) == 1, 'each output is exactly one crop'
    return found[0]


def test_crop_is_per_sample_or_per_batch():
    torch.manual_seed(0)
    images = torch.rand(16, 2, 8, 8) + 1  # no zeros: crops are unique
    windows = _windows(images, 2)
    out = random_crop_flip(images, 2, flip=False, per_sample=True)
    offsets = {_offset_of(out, windows, i) for i in range(16)}
    assert len(offsets) > 1
    out = random_crop_flip(images, 2, flip=False, per_sample=False)
    assert len({_offset_of(out, windows, i) for i in range(16)}) == 1


def test_flip_is_per_sample_and_differentiable():
    torch.manual_seed(0)
    images = torch.rand(32, 1, 4, 4, requires_grad=True)
    out = random_crop_flip(images, 0, flip=True, per_sample=True)
    flipped = [torch.equal(out[i], images[i].flip(-1)) for i in range(32)]
    kept = [torch.equal(out[i], images[i]) for i in range(32)]
    assert all(f or k for f, k in zip(flipped, kept))
    assert 0 < sum(flipped) < 32
    random_crop_flip(images, 2, flip=True).sum().backward()
    assert images.grad.abs().sum() > 0


# --------------------------------------------------------------------------
# the algorithm
# --------------------------------------------------------------------------
class BrightnessTeacher(nn.Module):
    """A teacher that is confident on bright images: class-0 logit grows
    with the mean input, the other nine are zero."""

    def forward(self, images, mode='tensor'):
        score = images.flatten(1).mean(1, keepdim=True) * 20
        return torch.cat([score, score.new_zeros(len(score), 9)], dim=1)


class FixedLogitsTeacher(nn.Module):

    def __init__(self, logits):
        super().__init__()
        self.logits = logits

    def forward(self, images, mode='tensor'):
        return self.logits


def _build(**overrides):
    cfg = Config.fromfile(CONFIG)
    cfg.model.teachers.teacher.ckpt_path = None  # random LeNet-5
    cfg.model.generator.latent_dim = 16
    cfg.model.generator.hidden_channels = 8
    cfg.model.update(overrides)
    torch.manual_seed(0)
    return MODELS.build(cfg.model).train()


def _draws(model, batch_size, draws=2):
    model._set_draws({
        'latents': torch.randn(batch_size, draws, 16),
        'targets': torch.zeros(batch_size, draws, dtype=torch.long),
    })


def test_selection_keeps_the_low_loss_samples():
    model = _build()
    # 20 confident images (teacher loss ~0), 12 uncertain ones (loss ~2.3)
    logits = torch.zeros(32, 10)
    logits[:20, 3] = torch.linspace(8, 10, 20)
    logits[20:, 3] = torch.linspace(0.1, 0.5, 12)
    model.teachers['teacher'] = FixedLogitsTeacher(logits)
    split = model.split(torch.rand(32, 1, 32, 32))
    assert split.keep.tolist() == [True] * 20 + [False] * 12
    assert (split.teacher_pred == 3).all()
    assert split.train_view.shape == (32, 1, 32, 32)
    batch = model.select_samples({
        'images': torch.rand(32, 1, 32, 32),
        'latents': torch.randn(32, 16),
    })
    assert batch['images'].shape[0] == 20
    assert batch['latents'].shape[0] == 20
    assert batch['generated_images'].shape[0] == 32


def test_selection_keeps_all_when_losses_are_equal():
    model = _build()
    model.teachers['teacher'] = FixedLogitsTeacher(torch.zeros(8, 10))
    assert model.split(torch.rand(8, 1, 32, 32)).keep.all()


def test_student_batch_has_exactly_b_kept_images():
    model = _build()
    model.teachers['teacher'] = BrightnessTeacher()
    _draws(model, 64)
    batch = model.sample_student_batch()
    logs = model._student_selection_logs
    assert batch['images'].shape == (64, 1, 32, 32)
    assert batch['targets'].shape == (64, )
    assert 0 < float(logs['student.kept_fraction']) < 1
    assert float(logs['student.generator_passes']) >= 2
    assert model._next_draw == 1  # one dataset draw; later passes: randn


def test_student_batch_is_topped_up_at_the_pass_cap():
    model = _build(max_generator_passes=1)
    model.teachers['teacher'] = BrightnessTeacher()
    _draws(model, 64)
    batch = model.sample_student_batch()
    logs = model._student_selection_logs
    assert batch['images'].shape[0] == 64
    assert float(logs['student.generator_passes']) == 1
    assert float(logs['student.kept_fraction']) < 1  # so it was topped up


def test_generator_loss_has_no_class_prior():
    model = _build()
    losses = model.generator_distiller.distill_losses
    assert set(losses) == {'loss_adv', 'loss_bn', 'loss_tv', 'loss_l2'}
    assert not any('Entropy' in type(loss).__name__ or 'Onehot' in type(
        loss).__name__ for loss in losses.values())
    _draws(model, 32)
    latents, targets = model.next_draw()
    student_before = [p.clone() for p in model.architecture.parameters()]
    generator_before = [p.clone() for p in model.generator.parameters()]
    wrapper = OptimWrapper(torch.optim.Adam(model.generator.parameters(), 1e-3))
    logs = model.generator_step(latents, targets, wrapper)
    parts = ['loss_adv', 'loss_bn', 'loss_tv', 'loss_l2']
    assert float(logs['generator.loss']) == pytest.approx(
        sum(float(logs[f'generator.{k}']) for k in parts), rel=1e-5)
    kept = model._last_generated['images'].shape[0]
    assert kept == round(float(logs['generator.kept_fraction']) * 32)
    assert 0 < kept <= 32
    assert any(not torch.equal(a, b) for a, b in zip(
        generator_before, model.generator.parameters()))
    assert all(torch.equal(a, b) for a, b in zip(
        student_before, model.architecture.parameters()))


def test_config_recipe():
    cfg = Config.fromfile(CONFIG)
    assert cfg.model.type == 'TADFKDDistillation'
    assert cfg.model.generator.bn_eps == 0.8
    assert cfg.model.generator.latent_dim == 1000
    assert cfg.model.student_iter == 10 and cfg.model.generator_iter == 1
    assert cfg.train_dataloader.dataset.num_draws == 11
    for name, batch, iters in (('cifar10', 1024, 7200),
                               ('cifar100', 1024, 18000)):
        cifar = Config.fromfile(
            osp.join(ROOT, 'configs/ta_dfkd/'
                     f'ta_dfkd_resnet34_resnet18_1xb1024_{name}.py'))
        assert cifar.train_dataloader.batch_size == batch
        assert cifar.train_cfg.max_iters == iters
        assert cifar.optim_wrapper.architecture.optimizer.lr == 0.01
        assert cifar.optim_wrapper.generator.optimizer.lr == 1e-3
        assert cifar.model.generator_distiller.distill_losses.loss_l2[
            'loss_weight'] == pytest.approx(6e-3 * 32)


def test_build_errors_are_named():
    with pytest.raises(ValueError, match='reuse_generator_batch'):
        _build(reuse_generator_batch=True)
    with pytest.raises(ValueError, match='data_preprocessor'):
        _build(data_preprocessor=None)
    assert isinstance(_build(), TADFKDDistillation)
