"""``MetaGeneratorUpdate`` (Fast's outer update) on a 2-parameter toy
generator whose updates are computed by hand.

Toy: theta = (a, b) = (1, 2), loss L = (a - 3)^2 + b^2 / 2, so
grad L = (2 (a - 3), b). Inner loop: k = 2 SGD steps with lr 0.1:

    theta'_0 = (1, 2)        g0 = (-4, 2)
    theta'_1 = (1.4, 1.8)    g1 = (-3.2, 1.8)
    theta'_2 = (1.72, 1.62)
"""
import pytest
import torch
from mmengine.optim import OptimWrapper
from torch import nn

import mmdfkd.models.algorithms.meta_generator_update as meta_module
from mmdfkd.models.algorithms import MetaGeneratorUpdate
from mmdfkd.registry import TASK_UTILS
from mmdfkd.utils import register_all_modules

register_all_modules()


class Toy(nn.Module):

    def __init__(self):
        super().__init__()
        self.theta = nn.Parameter(torch.tensor([1.0, 2.0],
                                               dtype=torch.float64))
        self.register_buffer('calls', torch.zeros((), dtype=torch.long))

    def loss(self):
        a, b = self.theta
        return (a - 3)**2 + b**2 / 2


def _run_inner_loop(update, meta, steps=2, lr=0.1):
    fast = update.begin(meta)
    inner = torch.optim.SGD(fast.parameters(), lr=lr)
    for _ in range(steps):
        inner.zero_grad()
        fast.loss().backward()
        update.accumulate(meta, fast)
        inner.step()
    return fast


def _values(values):
    return [pytest.approx(v, abs=1e-9) for v in values]


def test_inner_loop_adapts_a_copy_and_leaves_the_meta_weights():
    meta = Toy()
    meta.calls.fill_(7)
    fast = _run_inner_loop(MetaGeneratorUpdate('fomaml'), meta)
    assert fast is not meta and int(fast.calls) == 7  # buffers copied
    assert fast.theta.tolist() == _values([1.72, 1.62])
    assert meta.theta.tolist() == [1.0, 2.0]


def test_fomaml_sums_the_inner_gradients():
    meta = Toy()
    update = MetaGeneratorUpdate('fomaml')
    fast = _run_inner_loop(update, meta)
    # meta-gradient g0 + g1 = (-7.2, 3.8)
    assert meta.theta.grad.tolist() == _values([-7.2, 3.8])
    update.step(meta, fast, torch.optim.SGD(meta.parameters(), lr=0.05))
    # theta - 0.05 * (-7.2, 3.8)
    assert meta.theta.tolist() == _values([1.36, 1.81])
    assert meta.theta.grad is None  # cleared for the next task


def test_fomaml_last_gradient_only():
    meta = Toy()
    update = MetaGeneratorUpdate('fomaml', fomaml_gradient='last')
    fast = _run_inner_loop(update, meta)
    update.step(meta, fast, torch.optim.SGD(meta.parameters(), lr=0.05))
    # theta - 0.05 * g1 = (1, 2) - 0.05 * (-3.2, 1.8)
    assert meta.theta.tolist() == _values([1.16, 1.91])


def test_reptile_moves_towards_the_adapted_weights():
    meta = Toy()
    update = MetaGeneratorUpdate('reptile')  # the reference's scale 67
    fast = _run_inner_loop(update, meta)
    assert meta.theta.grad is None  # Reptile does not use inner gradients
    update.step(meta, fast, torch.optim.SGD(meta.parameters(), lr=0.05))
    # g = 67 * (theta - theta'_2) = 67 * (-0.72, 0.38) = (-48.24, 25.46)
    # theta - 0.05 * g = (3.412, 0.727)
    assert meta.theta.tolist() == _values([3.412, 0.727])


def test_reptile_with_scale_one_over_lr_equals_fomaml_sum_for_sgd():
    """With SGD inner steps theta - theta'_k = lr * sum_j g_j."""
    results = []
    for update in (MetaGeneratorUpdate('fomaml'),
                   MetaGeneratorUpdate('reptile', reptile_scale=10.0)):
        meta = Toy()
        fast = _run_inner_loop(update, meta, steps=3)
        update.step(meta, fast, torch.optim.SGD(meta.parameters(), lr=0.05))
        results.append(meta.theta.detach().clone())
    assert torch.allclose(results[0], results[1], atol=1e-12)


def test_meta_adam_first_step_and_optim_wrapper():
    """Fast's meta-optimiser is Adam; its first step is lr * sign(g)."""
    meta = Toy()
    update = MetaGeneratorUpdate('fomaml')
    fast = _run_inner_loop(update, meta)
    wrapper = OptimWrapper(torch.optim.Adam(meta.parameters(), lr=0.01,
                                            betas=(0.5, 0.999)))
    update.step(meta, fast, wrapper)
    # g = (-7.2, 3.8): a moves up, b down, by lr
    assert meta.theta.tolist() == [
        pytest.approx(1.01, abs=1e-6), pytest.approx(1.99, abs=1e-6)
    ]


def test_begin_clears_stale_meta_gradients():
    meta = Toy()
    meta.theta.grad = torch.ones(2, dtype=torch.float64)
    update = MetaGeneratorUpdate('fomaml')
    fast = _run_inner_loop(update, meta, steps=1)
    assert meta.theta.grad.tolist() == _values([-4.0, 2.0])
    assert fast.theta.grad is not None


def test_meta_gradient_is_averaged_over_ranks(monkeypatch):
    calls = []

    def fake_all_reduce(tensor, op):
        calls.append(op)
        tensor.div_(2)  # the mean with a rank whose gradient is 0

    monkeypatch.setattr(meta_module, 'get_world_size', lambda: 2)
    monkeypatch.setattr(meta_module, 'all_reduce', fake_all_reduce)
    meta = Toy()
    update = MetaGeneratorUpdate('fomaml')
    fast = _run_inner_loop(update, meta)
    update.step(meta, fast, torch.optim.SGD(meta.parameters(), lr=0.05))
    assert calls == ['mean']
    assert meta.theta.tolist() == _values([1.18, 1.905])


def test_mismatched_generators_and_bad_args():
    update = MetaGeneratorUpdate('reptile')
    with pytest.raises(ValueError, match='copy of the meta'):
        update.step(Toy(), nn.Linear(2, 2), torch.optim.SGD(
            Toy().parameters(), lr=0.1))
    with pytest.raises(ValueError, match='mode'):
        MetaGeneratorUpdate('maml2')
    with pytest.raises(ValueError, match='fomaml_gradient'):
        MetaGeneratorUpdate(fomaml_gradient='mean')
    built = TASK_UTILS.build(dict(type='MetaGeneratorUpdate', mode='reptile'))
    assert isinstance(built, MetaGeneratorUpdate) and built.mode == 'reptile'
