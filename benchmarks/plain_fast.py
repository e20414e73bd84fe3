"""Fast (Fang et al., "Up to 100x Faster Data-free Knowledge Distillation",
AAAI 2022) in plain PyTorch: the overhead floor of
``configs/fast/fast_lenet5_lenet5half_1xb256_fashionmnist.py``.

One iteration, exactly as the config's ``FastDistillation`` computes it
(the shared loop is in ``benchmarks/plain_synthesis.py``)::

    [iteration 139: G.fc and G.input_bn.0 weights ~ N(0, 0.02^2), biases 0]
    one synthesis task on a fresh z ~ N(0, I) (256 x 256) and targets y:
        G' = deep copy of the meta-generator G;  Adam(G', 3e-3) and
        Adam(z, 0.01), betas (0.5, 0.999), both new
        5 x:  x = G'(z);  v = normalise(crop4(x))
              L = 10 L_BN^0.9(T(v)) + 0.5 CE(T(v), y)
                  - 1.33 1/N sum_i m_i KL(p_T(v_i) || p_S(v_i))
                                            (not in the 20 warm-up iterations)
              keep x if L is the task's lowest; backward;
              grad_G += grad_G'  (first-order MAML, sum over the steps);
              step G' and z
        step G with the meta-optimiser (Adam 0.015 = 3e-3 x 5, betas
        (0.5, 0.999));  bank <- kept x (float16)
    40 student steps (after warm-up): 256 distinct bank images,
        normalise(crop4(x)), 20^2 KL(p_T^20 || p_S^20), SGD 0.2
        (momentum 0.9, weight decay 1e-4)

    python benchmarks/plain_fast.py [--iters 50] [--warmup 5] [--device cpu]

(stand-alone, iterations 0 to 19 are the config's warm-up: pass
``--warmup 20`` or more to time training iterations.)
"""
import copy
import os.path as osp
import sys

import torch
from torch import nn

if __package__ in (None, ''):  # run as a script
    sys.path.insert(0, osp.dirname(osp.dirname(osp.abspath(__file__))))
from benchmarks.plain_loop import build_optimizer, standalone_main
from benchmarks.plain_models import PlainFastGenerator, PlainLeNet5
from benchmarks.plain_synthesis import PlainSynthesisLoop

ADAM_HALF = {'betas': (0.5, 0.999)}


class PlainFast(PlainSynthesisLoop):
    """The Fast training loop with nothing but torch.

    Defaults are those of the Fashion-MNIST config (Fast-5).

    Args:
        teacher (PlainLeNet5): Frozen teacher.
        student (nn.Module): Student.
        generator (nn.Module): The meta-generator G.
        batch_size (int): Defaults to 256.
        latent_dim (int): Defaults to 256.
        generator_optimizer (tuple): The meta-optimiser,
            ``(torch.optim name, kwargs)``. Defaults to Adam, lr 0.015,
            betas (0.5, 0.999).
        inner_optimizer (tuple): Optimiser of each task's copy G'.
            Defaults to Adam, lr 3e-3, betas (0.5, 0.999).
        latent_optimizer (tuple, optional): Optimiser of each task's z.
            Defaults to Adam, lr 0.01, betas (0.5, 0.999).
        generator_iter (int): Inner steps per task. Defaults to 5.
        warmup_iters (int): Defaults to 20.
        memory_capacity (int): Defaults to 200 x 256.
        layer_reset_iter (int, optional): Iteration of the layer reset.
            Defaults to 139.
        layer_reset_modules (tuple[str]): Defaults to ('fc', 'input_bn.0').
        layer_reset_std (float): Defaults to 0.02.
        **kwargs: :class:`PlainSynthesisLoop` arguments.
    """

    def __init__(self,
                 teacher: nn.Module,
                 student: nn.Module,
                 generator: nn.Module,
                 batch_size: int = 256,
                 latent_dim: int = 256,
                 generator_optimizer: tuple[str, dict] = (
                     'Adam', {'lr': 3e-3 * 5, **ADAM_HALF}),
                 inner_optimizer: tuple[str, dict] = (
                     'Adam', {'lr': 3e-3, **ADAM_HALF}),
                 latent_optimizer: tuple[str, dict] | None = (
                     'Adam', {'lr': 0.01, **ADAM_HALF}),
                 generator_iter: int = 5,
                 warmup_iters: int = 20,
                 memory_capacity: int = 200 * 256,
                 layer_reset_iter: int | None = 139,
                 layer_reset_modules: tuple[str, ...] = ('fc', 'input_bn.0'),
                 layer_reset_std: float = 0.02,
                 **kwargs) -> None:
        super().__init__(
            teacher, student, generator, batch_size, latent_dim,
            generator_optimizer, generator_iter=generator_iter,
            warmup_iters=warmup_iters, memory_capacity=memory_capacity,
            **kwargs)
        self.inner_optimizer = inner_optimizer
        self.latent_optimizer = latent_optimizer
        self.layer_reset_iter = layer_reset_iter
        self.layer_reset_modules = layer_reset_modules
        self.layer_reset_std = layer_reset_std

    @torch.no_grad()
    def begin_iteration(self) -> None:
        if self.iteration == self.layer_reset_iter:
            for name in self.layer_reset_modules:
                layer = self.generator.get_submodule(name)
                nn.init.normal_(layer.weight, 0.0, self.layer_reset_std)
                nn.init.zeros_(layer.bias)

    def begin_task(self, latents: torch.Tensor):
        fast = copy.deepcopy(self.generator)
        latents = latents.detach().clone()
        latent_optimizer = None
        if self.latent_optimizer is not None:
            latents.requires_grad_(True)
            latent_optimizer = build_optimizer(self.latent_optimizer,
                                               [latents])
        return (fast, build_optimizer(self.inner_optimizer,
                                      fast.parameters()), latents,
                latent_optimizer)

    @torch.no_grad()
    def after_backward(self, fast: nn.Module) -> None:
        for meta_p, fast_p in zip(self.generator.parameters(),
                                  fast.parameters()):
            if fast_p.grad is None:
                continue
            if meta_p.grad is None:
                meta_p.grad = fast_p.grad.detach().clone()
            else:
                meta_p.grad.add_(fast_p.grad)

    def end_task(self, fast: nn.Module) -> None:
        self.optimizer_g.step()
        self.optimizer_g.zero_grad()


def build_fashion_mnist_fast(device='cpu') -> PlainFast:
    """The Fashion-MNIST config's networks (random weights) and recipe."""
    return PlainFast(
        teacher=PlainLeNet5(1.0),
        student=PlainLeNet5(0.5),
        generator=PlainFastGenerator(
            img_size=32, latent_dim=256, hidden_channels=32, out_channels=1),
        device=device)


if __name__ == '__main__':
    standalone_main(build_fashion_mnist_fast,
                    'Time the plain-PyTorch Fast loop (Fashion-MNIST sizes)')
