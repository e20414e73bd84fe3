"""Unit tests of the losses in ``mmdfkd/models/losses``.

Every expected value is computed by hand with plain-Python ``math`` from the
formula in the loss's docstring (never by calling torch.nn.functional the way
the implementation does), so a wrong implementation makes the test fail.
"""
import math

import pytest
import torch

from mmdfkd.models.losses import (ActivationLoss, ATLoss, BNStatisticsLoss,
                                  ImageL2NormLoss, InformationEntropyLoss,
                                  JSDivergence, KLDivergence, L1Loss,
                                  OnehotLikeLoss, TotalVariationLoss)
from mmdfkd.models.losses import (AgreementMaskedKLDivergence,
                                  CoupledFeatureAlignmentLoss,
                                  InBatchInfoNCELoss, InstanceContrastiveLoss,
                                  PseudoInverseFeatureAdversarialLoss,
                                  RealityGapLoss, RelationRefinementLoss,
                                  SelfPacedDistillationLoss,
                                  SelfPacedInfoNCEDistillationLoss)
from mmdfkd.models.recorders import BNStatistics
from mmdfkd.registry import MODELS
from mmdfkd.utils import register_all_modules

register_all_modules()

# Tiny 2x3 logits used throughout (N=2 samples, C=3 classes).
S = [[1.0, 2.0, 3.0], [0.0, 0.0, 1.0]]
T = [[3.0, 1.0, 0.0], [0.5, -0.5, 2.0]]


def _t(rows, requires_grad=False):
    return torch.tensor(rows, dtype=torch.float64, requires_grad=requires_grad)


def _softmax(row, tau=1.0):
    exps = [math.exp(v / tau) for v in row]
    z = sum(exps)
    return [e / z for e in exps]


def _kl(p, q):
    """KL(p || q) = sum_c p_c ln(p_c / q_c)."""
    return sum(pc * math.log(pc / qc) for pc, qc in zip(p, q) if pc > 0)


def _approx(x, rel=1e-9, abs=1e-12):
    return pytest.approx(x, rel=rel, abs=abs)


# --------------------------------------------------------------------------
# KLDivergence
# --------------------------------------------------------------------------
def _hand_kl_rows(s_rows, t_rows, tau):
    return [
        _kl(_softmax(t, tau), _softmax(s, tau))
        for s, t in zip(s_rows, t_rows)
    ]


def test_kl_tau1_batchmean_hand_value():
    rows = _hand_kl_rows(S, T, 1.0)
    expected = sum(rows) / 2
    assert expected > 0.5  # sanity: the pair is far from equal
    loss = KLDivergence(tau=1.0)(_t(S), _t(T))
    assert loss.dim() == 0
    assert loss.item() == _approx(expected)


def test_kl_tau2_includes_tau_squared_factor():
    rows = _hand_kl_rows(S, T, 2.0)
    expected = 2.0**2 * sum(rows) / 2
    loss = KLDivergence(tau=2.0)(_t(S), _t(T))
    assert loss.item() == _approx(expected)
    # and it is not the tau=1 value nor the value without tau^2
    assert loss.item() != _approx(sum(rows) / 2)
    assert loss.item() != _approx(sum(_hand_kl_rows(S, T, 1.0)) / 2)


@pytest.mark.parametrize('tau', [1.0, 2.0])
def test_kl_reductions(tau):
    rows = _hand_kl_rows(S, T, tau)
    total = sum(rows)
    n, c = 2, 3
    expected = {
        'batchmean': tau**2 * total / n,
        'sum': tau**2 * total,
        'mean': tau**2 * total / (n * c),
    }
    for reduction, value in expected.items():
        loss = KLDivergence(tau=tau, reduction=reduction)(_t(S), _t(T))
        assert loss.item() == _approx(value), reduction


def test_kl_unknown_reduction_raises():
    with pytest.raises(ValueError, match='reduction'):
        KLDivergence(reduction='none')


def test_kl_zero_for_equal_inputs():
    loss = KLDivergence(tau=2.0)(_t(S), _t(S))
    assert loss.item() == _approx(0.0, abs=1e-12)


def test_kl_teacher_detach_blocks_teacher_grad():
    s, t = _t(S, True), _t(T, True)
    KLDivergence(teacher_detach=True)(s, t).backward()
    assert t.grad is None
    assert s.grad is not None and s.grad.abs().sum() > 0


def test_kl_no_teacher_detach_lets_grad_flow():
    s, t = _t(S, True), _t(T, True)
    KLDivergence(teacher_detach=False)(s, t).backward()
    assert t.grad is not None and t.grad.abs().sum() > 0
    assert s.grad is not None and s.grad.abs().sum() > 0


def test_kl_student_gradient_hand_value():
    # d/ds_ic of tau^2/N * sum_i KL(p_i || q_i) = tau/N * (q_ic - p_ic)
    tau = 2.0
    s = _t(S, True)
    KLDivergence(tau=tau)(s, _t(T)).backward()
    for i in range(2):
        p, q = _softmax(T[i], tau), _softmax(S[i], tau)
        for c in range(3):
            assert s.grad[i, c].item() == _approx(tau / 2 * (q[c] - p[c]))


# --------------------------------------------------------------------------
# JSDivergence
# --------------------------------------------------------------------------
def _hand_js(s_rows, t_rows, tau, clamp=None):
    total = 0.0
    for s, t in zip(s_rows, t_rows):
        p, q = _softmax(t, tau), _softmax(s, tau)
        if clamp is not None:
            lo, hi = clamp
            p = [min(max(v, lo), hi) for v in p]
            q = [min(max(v, lo), hi) for v in q]
        m = [(a + b) / 2 for a, b in zip(p, q)]
        total += (_kl(p, m) + _kl(q, m)) / 2
    return total / len(s_rows)


@pytest.mark.parametrize('tau', [1.0, 3.0])
def test_js_hand_value(tau):
    expected = _hand_js(S, T, tau)
    assert expected > 1e-3
    loss = JSDivergence(tau=tau)(_t(S), _t(T))
    assert loss.item() == _approx(expected)


def test_js_default_tau_is_3():
    loss = JSDivergence()(_t(S), _t(T))
    assert loss.item() == _approx(_hand_js(S, T, 3.0))


def test_js_symmetric():
    js = JSDivergence(tau=1.0)
    assert js(_t(S), _t(T)).item() == _approx(js(_t(T), _t(S)).item())


def test_js_zero_for_equal_inputs():
    assert JSDivergence(tau=1.0)(_t(S), _t(S)).item() == _approx(
        0.0, abs=1e-12)


def test_js_bounded_by_ln2():
    # very different one-hot-like predictions approach ln 2
    s = [[50.0, 0.0, 0.0]]
    t = [[0.0, 50.0, 0.0]]
    loss = JSDivergence(tau=1.0)(_t(s), _t(t)).item()
    assert loss <= math.log(2) + 1e-9
    assert loss == pytest.approx(math.log(2), rel=1e-6)


def test_js_prob_clamp_hand_value():
    # peaked rows so that the clamp actually changes the distributions
    s = [[10.0, 0.0, 0.0], [0.0, 1.0, 0.0]]
    t = [[0.0, 0.0, 10.0], [0.0, 0.0, 8.0]]
    clamp = (0.01, 0.99)
    expected = _hand_js(s, t, 1.0, clamp)
    unclamped = _hand_js(s, t, 1.0)
    assert abs(expected - unclamped) > 1e-3  # the clamp matters here
    loss = JSDivergence(tau=1.0, prob_clamp=clamp)(_t(s), _t(t))
    assert loss.item() == _approx(expected)
    loss_none = JSDivergence(tau=1.0)(_t(s), _t(t))
    assert loss_none.item() == _approx(unclamped)


def test_js_teacher_detach():
    s, t = _t(S, True), _t(T, True)
    JSDivergence(tau=1.0)(s, t).backward()  # default: not detached
    assert t.grad is not None and t.grad.abs().sum() > 0
    s, t = _t(S, True), _t(T, True)
    JSDivergence(tau=1.0, teacher_detach=True)(s, t).backward()
    assert t.grad is None
    assert s.grad.abs().sum() > 0


# --------------------------------------------------------------------------
# L1Loss
# --------------------------------------------------------------------------
def test_l1_hand_value():
    expected = sum(
        abs(a - b) for rs, rt in zip(S, T) for a, b in zip(rs, rt)) / 6
    loss = L1Loss()(_t(S), _t(T))
    assert loss.item() == _approx(expected)


def test_l1_teacher_detach():
    s, t = _t(S, True), _t(T, True)
    L1Loss()(s, t).backward()
    assert t.grad is not None and t.grad.abs().sum() > 0
    s, t = _t(S, True), _t(T, True)
    L1Loss(teacher_detach=True)(s, t).backward()
    assert t.grad is None


# --------------------------------------------------------------------------
# OnehotLikeLoss
# --------------------------------------------------------------------------
def test_onehot_like_hand_value():
    # CE(t_i, argmax t_i) = -ln softmax(t_i)[argmax t_i]
    total = 0.0
    for row in T:
        k = max(range(3), key=lambda c: row[c])
        total += -math.log(_softmax(row)[k])
    expected = total / 2
    loss = OnehotLikeLoss()(_t(T))
    assert loss.item() == _approx(expected)


def test_onehot_like_gradient_not_through_labels():
    t = _t(T, True)
    OnehotLikeLoss()(t).backward()
    # gradient of CE w.r.t. logits: (softmax - onehot) / N
    for i, row in enumerate(T):
        p = _softmax(row)
        k = max(range(3), key=lambda c: row[c])
        for c in range(3):
            g = (p[c] - (1.0 if c == k else 0.0)) / 2
            assert t.grad[i, c].item() == _approx(g)


# --------------------------------------------------------------------------
# InformationEntropyLoss
# --------------------------------------------------------------------------
def test_information_entropy_hand_value_natural_log():
    probs = [_softmax(r) for r in T]
    p_bar = [(probs[0][c] + probs[1][c]) / 2 for c in range(3)]
    expected = sum(p * math.log(p) for p in p_bar)
    loss = InformationEntropyLoss()(_t(T))
    assert loss.item() == _approx(expected)
    # natural log, not log10
    assert loss.item() != _approx(expected / math.log(10))


def test_information_entropy_uniform_mean_gives_minus_ln_c():
    # each class is the arg-max once: the batch-mean prediction is uniform
    logits = [[1.0, 2.0, 3.0], [2.0, 3.0, 1.0], [3.0, 1.0, 2.0]]
    loss = InformationEntropyLoss()(_t(logits))
    assert loss.item() == _approx(-math.log(3))
    # and it is the minimum: any non-uniform mean is larger
    assert InformationEntropyLoss()(_t(T)).item() > -math.log(3)


# --------------------------------------------------------------------------
# ActivationLoss
# --------------------------------------------------------------------------
def test_activation_loss_hand_value():
    feat = [[1.0, -2.0, 0.5], [-0.5, 0.0, 3.0]]
    expected = -(1.0 + 2.0 + 0.5 + 0.5 + 0.0 + 3.0) / 6
    assert ActivationLoss()(_t(feat)).item() == _approx(expected)
    assert ActivationLoss(loss_weight=0.1)(_t(feat)).item() == _approx(
        0.1 * expected)


# --------------------------------------------------------------------------
# BNStatisticsLoss
# --------------------------------------------------------------------------
def _bn_stats():
    layer1 = BNStatistics(
        batch_mean=_t([1.0, 2.0]),
        batch_var=_t([1.0, 1.0]),
        running_mean=_t([0.0, 0.0]),
        running_var=_t([1.0, 3.0]))
    layer2 = BNStatistics(
        batch_mean=_t([3.0]),
        batch_var=_t([4.0]),
        running_mean=_t([0.0]),
        running_var=_t([0.0]))
    return [layer1, layer2]


def test_bn_statistics_loss_hand_value():
    # layer 1: ||(1,2)||=sqrt(5), ||(0,-2)||=2; layer 2: 3 + 4
    expected = math.sqrt(5) + 2.0 + 3.0 + 4.0
    loss = BNStatisticsLoss()(_bn_stats())
    assert loss.item() == _approx(expected)
    # plain norms, not squared norms
    assert loss.item() != _approx(5 + 4 + 9 + 16)


def test_bn_statistics_loss_sums_over_layers():
    stats = _bn_stats()
    loss = BNStatisticsLoss()
    assert loss(stats).item() == _approx(
        loss(stats[:1]).item() + loss(stats[1:]).item())


def test_bn_statistics_loss_gradient_to_batch_stats():
    stats = _bn_stats()
    mean = stats[0].batch_mean.clone().requires_grad_(True)
    stats[0] = stats[0]._replace(batch_mean=mean)
    BNStatisticsLoss()(stats).backward()
    # d||m - r|| / dm = (m - r) / ||m - r|| = (1, 2) / sqrt(5)
    assert mean.grad.tolist() == [
        _approx(1 / math.sqrt(5)), _approx(2 / math.sqrt(5))
    ]


# --------------------------------------------------------------------------
# ATLoss
# --------------------------------------------------------------------------
def test_at_loss_hand_value():
    # s: 1x2x2x2, channel maps [[1,0],[0,1]] and [[1,2],[0,0]]
    s = [[[[1.0, 0.0], [0.0, 1.0]], [[1.0, 2.0], [0.0, 0.0]]]]
    t = [[[[1.0, 1.0], [1.0, 1.0]], [[-1.0, 1.0], [1.0, -1.0]]]]
    # a(s) before normalisation: mean_c f^2 = [1, 2, 0, 0.5]
    a_s = [1.0, 2.0, 0.0, 0.5]
    ns = math.sqrt(sum(v * v for v in a_s))
    a_s = [v / ns for v in a_s]
    a_t = [1.0, 1.0, 1.0, 1.0]
    nt = math.sqrt(sum(v * v for v in a_t))
    a_t = [v / nt for v in a_t]
    expected = sum((a - b)**2 for a, b in zip(a_s, a_t)) / 4
    loss = ATLoss()(_t(s), _t(t))
    assert loss.item() == _approx(expected)
    assert ATLoss(loss_weight=250.)(_t(s), _t(t)).item() == _approx(
        250. * expected)


def test_at_loss_allows_different_channels():
    s = torch.randn(2, 3, 4, 4)
    t = torch.randn(2, 5, 4, 4)
    assert ATLoss()(s, t).dim() == 0


def test_at_loss_spatial_mismatch_raises():
    with pytest.raises(ValueError, match='spatial'):
        ATLoss()(torch.randn(1, 2, 4, 4), torch.randn(1, 2, 2, 2))


def test_at_loss_teacher_detached():
    s = torch.randn(1, 2, 2, 2, requires_grad=True)
    t = torch.randn(1, 2, 2, 2, requires_grad=True)
    ATLoss()(s, t).backward()
    assert t.grad is None
    assert s.grad is not None


# --------------------------------------------------------------------------
# TotalVariationLoss
# --------------------------------------------------------------------------
IMG = [[1.0, 2.0, 4.0], [0.0, 3.0, 5.0], [2.0, 2.0, 7.0]]


def _tv_diffs(x):
    h, w = len(x), len(x[0])
    right = [x[i][j] - x[i][j + 1] for i in range(h) for j in range(w - 1)]
    down = [x[i][j] - x[i + 1][j] for i in range(h - 1) for j in range(w)]
    # anti-diagonal: lower-left minus upper-right
    diag1 = [
        x[i + 1][j] - x[i][j + 1] for i in range(h - 1) for j in range(w - 1)
    ]
    diag2 = [
        x[i][j] - x[i + 1][j + 1] for i in range(h - 1) for j in range(w - 1)
    ]
    return right, down, diag1, diag2


def test_tv_l2_hand_value_3x3():
    expected = sum(
        math.sqrt(sum(d * d for d in ds)) for ds in _tv_diffs(IMG))
    loss = TotalVariationLoss(norm='l2')(_t([[IMG]]))
    assert loss.item() == _approx(expected)


def test_tv_l1_hand_value_3x3():
    expected = sum(
        sum(abs(d) for d in ds) / len(ds) for ds in _tv_diffs(IMG))
    loss = TotalVariationLoss(norm='l1')(_t([[IMG]]))
    assert loss.item() == _approx(expected)


def test_tv_2x2_all_four_directions():
    # x = [[a, b], [c, d]]: right (a-b, c-d), down (a-c, b-d),
    # anti-diagonal (c-b), diagonal (a-d)
    a, b, c, d = 1.0, 4.0, 2.0, 8.0
    img = _t([[[[a, b], [c, d]]]])
    l2 = (math.sqrt((a - b)**2 + (c - d)**2) + math.sqrt((a - c)**2 +
                                                          (b - d)**2) +
          abs(c - b) + abs(a - d))
    l1 = ((abs(a - b) + abs(c - d)) / 2 + (abs(a - c) + abs(b - d)) / 2 +
          abs(c - b) + abs(a - d))
    assert TotalVariationLoss('l2')(img).item() == _approx(l2)
    assert TotalVariationLoss('l1')(img).item() == _approx(l1)
    # checkerboard: both diagonal diffs vanish, right/down give sqrt(2) each
    board = _t([[[[0.0, 1.0], [1.0, 0.0]]]])
    assert TotalVariationLoss('l2')(board).item() == _approx(2 * math.sqrt(2))
    # an image varying only along the main diagonal: right, down and the
    # anti-diagonal see 1 and 1 resp. 0, the diagonal sees |0 - 1| = 1
    diag = _t([[[[0.0, 0.5], [0.5, 1.0]]]])
    assert TotalVariationLoss('l2')(diag).item() == _approx(
        math.sqrt(0.5) + math.sqrt(0.5) + 0.0 + 1.0)


def test_tv_constant_image_is_zero():
    img = torch.full((2, 3, 4, 4), 0.7)
    assert TotalVariationLoss('l2')(img).item() == 0.0
    assert TotalVariationLoss('l1')(img).item() == 0.0


def test_tv_l2_is_norm_of_whole_batch_tensor():
    # two images: the l2 norm runs over the whole difference tensor
    img2 = [[0.0, 0.0, 0.0], [0.0, 0.0, 0.0], [0.0, 0.0, 1.0]]
    d1, d2 = _tv_diffs(IMG), _tv_diffs(img2)
    expected = sum(
        math.sqrt(sum(v * v for v in a) + sum(v * v for v in b))
        for a, b in zip(d1, d2))
    loss = TotalVariationLoss('l2')(_t([[IMG], [img2]]))
    assert loss.item() == _approx(expected)


def test_tv_invalid_norm():
    with pytest.raises(ValueError, match='norm'):
        TotalVariationLoss(norm='l3')


# --------------------------------------------------------------------------
# ImageL2NormLoss
# --------------------------------------------------------------------------
def test_image_l2_norm_hand_value():
    # 2x1x2x2 images with norms sqrt(1+4+4+16)=5 and sqrt(1+1+1+1)=2
    imgs = [[[[1.0, 2.0], [2.0, 4.0]]], [[[1.0, -1.0], [1.0, -1.0]]]]
    expected = (5.0 + 2.0) / 2
    assert ImageL2NormLoss()(_t(imgs)).item() == _approx(expected)
    # the whole-tensor norm (TA-DFKD's code): sqrt(25 + 4)
    assert ImageL2NormLoss(reduction='batch', loss_weight=2.0)(
        _t(imgs)).item() == _approx(2.0 * 29**0.5)
    with pytest.raises(ValueError, match='reduction'):
        ImageL2NormLoss(reduction='sum')


# --------------------------------------------------------------------------
# loss_weight and the registry, for every loss
# --------------------------------------------------------------------------
def _inputs(name):
    torch.manual_seed(0)
    logits = dict(preds_S=_t(S), preds_T=_t(T))
    return {
        'KLDivergence': logits,
        'JSDivergence': logits,
        'L1Loss': dict(s_feature=_t(S), t_feature=_t(T)),
        'OnehotLikeLoss': dict(preds_T=_t(T)),
        'InformationEntropyLoss': dict(preds_T=_t(T)),
        'ActivationLoss': dict(feat_T=_t(S)),
        'BNStatisticsLoss': dict(bn_stats=_bn_stats()),
        'ATLoss': dict(
            s_feature=torch.randn(2, 3, 4, 4, dtype=torch.float64),
            t_feature=torch.randn(2, 3, 4, 4, dtype=torch.float64)),
        'TotalVariationLoss': dict(images=_t([[IMG]])),
        'ImageL2NormLoss': dict(images=_t([[IMG]])),
        'AgreementMaskedKLDivergence': logits,
        'SelfPacedDistillationLoss': logits,
        'InstanceContrastiveLoss': dict(
            anchors=_t([[1.0, 0.0], [0.0, 1.0], [1.0, 1.0]]),
            keys=_t([[1.0, 0.2], [0.3, 1.0], [-1.0, 1.0]])),
        'RealityGapLoss': dict(logits, targets=torch.tensor([2, 0])),
        'InBatchInfoNCELoss': dict(feats_S=_t(S), feats_T=_t(T)),
        'RelationRefinementLoss': dict(query=_t(T), key=_t(S)),
        'SelfPacedInfoNCEDistillationLoss': dict(
            logits, feats_S=_t(S), feats_T=_t(T)),
        'CoupledFeatureAlignmentLoss': dict(
            generator_features=[torch.randn(2, 3, 4, 4)],
            teacher_features=[torch.randn(2, 3, 4, 4)],
            running_means=[torch.zeros(3)], running_vars=[torch.ones(3)]),
        'PseudoInverseFeatureAdversarialLoss': dict(
            features=torch.randn(2, 4), targets=torch.tensor([2, 0])),
    }[name]


# constructor arguments of the losses that need some (the rest: defaults)
BUILD_ARGS = {
    'InBatchInfoNCELoss': dict(feature_dim=3),
    'RelationRefinementLoss': dict(feature_dim=3, queue_size=8),
    'SelfPacedInfoNCEDistillationLoss': dict(info_nce=dict(feature_dim=3)),
    'CoupledFeatureAlignmentLoss': dict(num_channels=[3]),
    'PseudoInverseFeatureAdversarialLoss': dict(
        classifier_weight=torch.arange(12.0).reshape(3, 4).sin()),
}
# in mmdfkd.models.losses but not a loss: the fixed projection the
# AdaDFKD losses share (tests/test_adadfkd.py)
NOT_LOSSES = {'RelationFeatureProjection'}
FLOAT32_LOSSES = {
    'InBatchInfoNCELoss', 'RelationRefinementLoss',
    'CoupledFeatureAlignmentLoss', 'PseudoInverseFeatureAdversarialLoss'
}


ALL_LOSSES = {
    'KLDivergence': KLDivergence,
    'JSDivergence': JSDivergence,
    'L1Loss': L1Loss,
    'OnehotLikeLoss': OnehotLikeLoss,
    'InformationEntropyLoss': InformationEntropyLoss,
    'ActivationLoss': ActivationLoss,
    'BNStatisticsLoss': BNStatisticsLoss,
    'ATLoss': ATLoss,
    'TotalVariationLoss': TotalVariationLoss,
    'ImageL2NormLoss': ImageL2NormLoss,
    # hand values: tests/test_dfq_cudfkd.py
    'AgreementMaskedKLDivergence': AgreementMaskedKLDivergence,
    'SelfPacedDistillationLoss': SelfPacedDistillationLoss,
    # hand value: tests/test_cmi.py
    'InstanceContrastiveLoss': InstanceContrastiveLoss,
    # hand values: tests/test_gapssg.py, tests/test_adadfkd.py and
    # tests/test_cpnet.py
    'RealityGapLoss': RealityGapLoss,
    'InBatchInfoNCELoss': InBatchInfoNCELoss,
    'RelationRefinementLoss': RelationRefinementLoss,
    'SelfPacedInfoNCEDistillationLoss': SelfPacedInfoNCEDistillationLoss,
    'CoupledFeatureAlignmentLoss': CoupledFeatureAlignmentLoss,
    'PseudoInverseFeatureAdversarialLoss':
    PseudoInverseFeatureAdversarialLoss,
}


def _build(name, **kwargs):
    return MODELS.build(dict(type=name, **BUILD_ARGS.get(name, {}), **kwargs))


def test_every_loss_module_is_covered():
    import mmdfkd.models.losses as losses_pkg
    assert set(losses_pkg.__all__) - NOT_LOSSES == set(ALL_LOSSES)


@pytest.mark.parametrize('name', sorted(ALL_LOSSES))
def test_loss_weight_scales_linearly(name):
    base = _build(name)(**_inputs(name)).item()
    assert base != 0.0
    # float32 inside (feature normalisation, pinv, batch statistics)
    rel = 1e-6 if name in FLOAT32_LOSSES else 1e-9
    for w in (2.5, -1.0, 0.0):
        value = _build(name, loss_weight=w)(**_inputs(name)).item()
        assert value == _approx(w * base, rel=rel), w


@pytest.mark.parametrize('name', sorted(ALL_LOSSES))
def test_buildable_from_registry(name):
    loss = _build(name)
    assert type(loss) is ALL_LOSSES[name]
    assert isinstance(loss, torch.nn.Module)
    assert loss.loss_weight == 1.0
    # also with the explicit scope prefix
    assert type(MODELS.build(dict(type=f'mmdfkd.{name}',
                                  **BUILD_ARGS.get(name, {})))) \
        is ALL_LOSSES[name]
