"""``BNStatisticsLoss`` with the running average of Fast / NAYER
(``momentum``): hand-computed values, gradients only through the current
batch, the history's life cycle and its round trip through state_dicts."""
import copy
import math

import pytest
import torch
from mmengine.runner.checkpoint import load_state_dict as mmengine_load
from torch import nn

from mmdfkd.models.losses import BNStatisticsLoss
from mmdfkd.models.recorders import BNStatistics, RecorderManager
from mmdfkd.registry import MODELS
from mmdfkd.utils import register_all_modules

register_all_modules()


def _approx(x):
    return pytest.approx(x, rel=1e-6, abs=1e-6)


def _t(values, requires_grad=False):
    return torch.tensor(values, dtype=torch.float64,
                        requires_grad=requires_grad)


def _layer(mean, var, requires_grad=False):
    """One BN layer with running mean (0, 0) and running variance (1, 1)."""
    return BNStatistics(
        batch_mean=_t(mean, requires_grad),
        batch_var=_t(var),
        running_mean=_t([0.0, 0.0]),
        running_var=_t([1.0, 1.0]))


def test_hand_values_over_three_batches():
    loss = BNStatisticsLoss(momentum=0.9)
    # batch 1: no history yet -> the plain DeepInversion loss
    # ||(1, 2) - 0|| + ||(1, 3) - 1|| = sqrt(5) + 2
    assert loss([_layer([1.0, 2.0], [1.0, 3.0])]).item() == _approx(
        math.sqrt(5) + 2)
    assert loss.history() == []
    loss.update_history()  # history := batch 1's statistics
    (hist_mean, hist_var), = loss.history()
    assert hist_mean.tolist() == [1.0, 2.0]
    assert hist_var.tolist() == [1.0, 3.0]

    # batch 2: mean (3, 0), var (2, 1), blended with the history:
    # mean 0.1 * (3, 0) + 0.9 * (1, 2) = (1.2, 1.8)
    # var  0.1 * (2, 1) + 0.9 * (1, 3) = (1.1, 2.8)
    batch2 = _layer([3.0, 0.0], [2.0, 1.0], requires_grad=True)
    value = loss([batch2])
    expected = math.sqrt(1.2**2 + 1.8**2) + math.sqrt(0.1**2 + 1.8**2)
    assert value.item() == _approx(expected)
    # the gradient reaches the current batch through (1 - m) only:
    # d/d mean = 0.1 * (1.2, 1.8) / ||(1.2, 1.8)||
    value.backward()
    norm = math.sqrt(1.2**2 + 1.8**2)
    assert batch2.batch_mean.grad.tolist() == [
        _approx(0.1 * 1.2 / norm), _approx(0.1 * 1.8 / norm)
    ]
    loss.update_history()
    (hist_mean, hist_var), = loss.history()
    # EMA: 0.9 * (1, 2) + 0.1 * (3, 0) = (1.2, 1.8); var (1.1, 2.8)
    assert hist_mean.tolist() == [_approx(1.2), _approx(1.8)]
    assert hist_var.tolist() == [_approx(1.1), _approx(2.8)]
    assert not hist_mean.requires_grad and not hist_var.requires_grad

    # batch 3: mean (0, 0), var (1, 1):
    # mean 0.9 * (1.2, 1.8) = (1.08, 1.62); var 0.1 + 0.9 * (1.1, 2.8)
    value = loss([_layer([0.0, 0.0], [1.0, 1.0])])
    expected = (math.sqrt(1.08**2 + 1.62**2) +
                math.sqrt((0.1 + 0.99 - 1)**2 + (0.1 + 2.52 - 1)**2))
    assert value.item() == _approx(expected)
    assert int(loss.num_history_updates) == 2


def test_weight_scales_and_momentum_zero_is_the_plain_loss():
    stats = [_layer([1.0, 2.0], [1.0, 3.0])]
    plain = BNStatisticsLoss()(stats).item()
    m0 = BNStatisticsLoss(momentum=0.0)
    m0(stats)
    m0.update_history()
    other = [_layer([3.0, 0.0], [2.0, 1.0])]
    assert m0(other).item() == _approx(BNStatisticsLoss()(other).item())
    weighted = BNStatisticsLoss(loss_weight=10.0, momentum=0.9)
    assert weighted(stats).item() == _approx(10 * plain)


def test_update_needs_a_forward_and_folds_each_batch_once():
    loss = BNStatisticsLoss(momentum=0.5)
    loss.update_history()  # nothing recorded yet: no-op
    assert loss.history() == [] and int(loss.num_history_updates) == 0
    loss([_layer([2.0, 2.0], [1.0, 1.0])])
    loss.update_history()
    loss.update_history()  # the same batch is not folded in twice
    assert loss.history()[0][0].tolist() == [2.0, 2.0]
    assert int(loss.num_history_updates) == 1
    loss([_layer([0.0, 4.0], [1.0, 1.0])])
    loss.update_history()
    assert loss.history()[0][0].tolist() == [1.0, 3.0]


def test_reset_history_returns_to_the_per_batch_loss():
    loss = BNStatisticsLoss(momentum=0.9)
    loss([_layer([5.0, 5.0], [1.0, 1.0])])
    loss.update_history()
    loss.reset_history()
    assert loss.history() == [] and int(loss.num_history_updates) == 0
    stats = [_layer([1.0, 2.0], [1.0, 3.0])]
    assert loss(stats).item() == _approx(BNStatisticsLoss()(stats).item())


def test_without_momentum_no_state_and_no_history():
    loss = BNStatisticsLoss()
    assert loss.state_dict() == {}
    loss([_layer([1.0, 2.0], [1.0, 3.0])])
    loss.update_history()
    assert loss.history() == []


def test_invalid_momentum_and_layer_count_mismatch():
    for momentum in (-0.1, 1.0, 1.5):
        with pytest.raises(ValueError, match='momentum'):
            BNStatisticsLoss(momentum=momentum)
    loss = BNStatisticsLoss(momentum=0.9)
    loss([_layer([1.0, 2.0], [1.0, 3.0])])
    loss.update_history()
    with pytest.raises(ValueError, match='history of 1 BN layers'):
        loss([_layer([1.0, 2.0], [1.0, 3.0])] * 2)


def test_history_round_trips_through_state_dicts():
    loss = BNStatisticsLoss(momentum=0.9)
    for mean in ([1.0, 2.0], [3.0, 0.0]):
        loss([_layer(mean, [1.0, 1.0]), _layer(mean[::-1], [2.0, 2.0])])
        loss.update_history()
    state = copy.deepcopy(loss.state_dict())
    assert set(state) == {
        'num_history_updates', 'history_mean_0', 'history_var_0',
        'history_mean_1', 'history_var_1'
    }
    probe = [_layer([0.5, 0.5], [1.0, 1.0]), _layer([1.0, 0.0], [2.0, 1.0])]
    for load in (lambda m, s: m.load_state_dict(s),
                 lambda m, s: mmengine_load(m, s, strict=True)):
        fresh = BNStatisticsLoss(momentum=0.9)  # buffers created on load
        load(fresh, state)
        assert fresh(probe).item() == _approx(loss(probe).item())
        assert int(fresh.num_history_updates) == 2
    # a state without history empties an existing one
    loss.load_state_dict(BNStatisticsLoss(momentum=0.9).state_dict())
    assert loss.history() == []


def test_with_a_bn_recorder_gradients_flow_only_through_the_current_batch():
    """Real BN layers, recorder and loss: after the history has taken in
    batch 1, a backward pass of batch 2 must not reach batch 1's graph
    (which would fail: it was freed) and must reach batch 2's pixels."""
    torch.manual_seed(0)
    teacher = nn.ModuleDict(dict(tea=nn.Sequential(
        nn.Conv2d(3, 4, 3), nn.BatchNorm2d(4), nn.ReLU(),
        nn.Conv2d(4, 4, 3), nn.BatchNorm2d(4)).eval()))
    for bn in (teacher.tea[1], teacher.tea[4]):
        bn.running_mean.uniform_(-1, 1)
        bn.running_var.uniform_(0.5, 2)
    manager = RecorderManager(dict(bn=dict(type='BNStatisticsRecorder',
                                           source='tea')))
    manager.prepare_from_model(teacher)
    loss = MODELS.build(dict(type='BNStatisticsLoss', momentum=0.9))
    x1 = torch.randn(8, 3, 8, 8, requires_grad=True)
    with manager:
        teacher.tea(x1)
    loss(manager.get_recorder('bn').get_record_data()).backward()
    loss.update_history()
    x2 = torch.randn(8, 3, 8, 8, requires_grad=True)
    with manager:
        teacher.tea(x2)
    stats = manager.get_recorder('bn').get_record_data()
    value = loss(stats)
    value.backward()
    assert x2.grad is not None and x2.grad.abs().sum() > 0
    # and the value is the blended one
    m = 0.9
    expected = sum(
        torch.linalg.vector_norm((1 - m) * s.batch_mean + m * hm -
                                 s.running_mean) +
        torch.linalg.vector_norm((1 - m) * s.batch_var + m * hv -
                                 s.running_var)
        for s, (hm, hv) in zip(stats, loss.history(), strict=True))
    assert value.item() == _approx(expected.item())
