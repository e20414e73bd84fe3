"""NAYER (Tran et al., "NAYER: Noisy Layer Data Generation for Efficient and
Effective Data-free Knowledge Distillation", CVPR 2024) in plain PyTorch:
the overhead floor of
``configs/nayer/nayer_lenet5_lenet5half_1xb200_fashionmnist.py`` (and of
its ``nayer_orthogonal_...`` twin, which only changes the embedding table).

One iteration, exactly as the config's ``FastDistillation`` with
``meta_update=None`` computes it (the shared loop is in
``benchmarks/plain_synthesis.py``)::

    [t > 0 and (t % 10 == 0 or (t - 5) % 10 == 0): every layer of G
     re-initialised (reset_parameters, in module order), Adam state cleared]
    2 synthesis tasks (5 in the 5 warm-up iterations), each:
        y = 20 blocks 0..9 (class-balanced, 200 targets)
        clear the Adam state of G (a new Adam per batch); noisy layers of G
        re-drawn from N(0, 1), zero bias
        10 x: x = G(e_y);  v = normalise(crop4(x))
              L = 10 L_BN^0.9(T(v)) + 0.5 CE(T(v), y)
                  - 1.33 1/N sum_i m_i KL(p_T(v_i) || p_S(v_i))
                                                    (not during warm-up)
              keep x if L is the task's lowest; step G (Adam 4e-3, betas
              (0.5, 0.999))
        bank <- kept x (float16)
    40 student steps (after warm-up): 256 distinct bank images,
        normalise(crop4(x)), 20^2 KL(p_T^20 || p_S^20), SGD 0.2
        (momentum 0.9, weight decay 1e-4)

    python benchmarks/plain_nayer.py [--iters 50] [--warmup 5] [--device cpu]
"""
import os.path as osp
import sys

import torch
from torch import nn

if __package__ in (None, ''):  # run as a script
    sys.path.insert(0, osp.dirname(osp.dirname(osp.abspath(__file__))))
from benchmarks.plain_loop import standalone_main
from benchmarks.plain_models import (
    PlainLeNet5,
    PlainNoisyLayerGenerator,
    PlainNoisyLinear,
)
from benchmarks.plain_synthesis import PlainSynthesisLoop

ROOT = osp.dirname(osp.dirname(osp.abspath(__file__)))
FASHION_MNIST_EMBEDDINGS = osp.join(
    ROOT, 'configs/_base_/label_embeddings/fashion_mnist_all-minilm-l6-v2.pth')


class PlainNAYER(PlainSynthesisLoop):
    """The NAYER training loop with nothing but torch.

    Defaults are those of the Fashion-MNIST config.

    Args:
        teacher (PlainLeNet5): Frozen teacher.
        student (nn.Module): Student.
        generator (PlainNoisyLayerGenerator): Generator.
        batch_size (int): Defaults to 200.
        latent_dim (int): Defaults to 0 (no latent code).
        generator_optimizer (tuple): ``(torch.optim name, kwargs)``.
            Defaults to Adam, lr 4e-3, betas (0.5, 0.999).
        generator_iter (int): Steps per task. Defaults to 10.
        synthesis_loops (int): Defaults to 2.
        warmup_synthesis_loops (int): Defaults to 5.
        warmup_iters (int): Defaults to 5.
        memory_capacity (int): Defaults to (5 x 5 + 60 x 2) x 200.
        generator_reinit_interval (int, optional): NAYER's ``g_life``.
            Defaults to 10.
        reset_bn_history_on_reinit (bool): Defaults to False.
        **kwargs: :class:`PlainSynthesisLoop` arguments.
    """

    def __init__(self,
                 teacher: nn.Module,
                 student: nn.Module,
                 generator: nn.Module,
                 batch_size: int = 200,
                 latent_dim: int = 0,
                 generator_optimizer: tuple[str, dict] = (
                     'Adam', {'lr': 4e-3, 'betas': (0.5, 0.999)}),
                 generator_iter: int = 10,
                 synthesis_loops: int = 2,
                 warmup_synthesis_loops: int = 5,
                 warmup_iters: int = 5,
                 memory_capacity: int = (5 * 5 + 60 * 2) * 200,
                 generator_reinit_interval: int | None = 10,
                 reset_bn_history_on_reinit: bool = False,
                 **kwargs) -> None:
        super().__init__(
            teacher, student, generator, batch_size, latent_dim,
            generator_optimizer, generator_iter=generator_iter,
            synthesis_loops=synthesis_loops,
            warmup_synthesis_loops=warmup_synthesis_loops,
            warmup_iters=warmup_iters, memory_capacity=memory_capacity,
            **kwargs)
        self.generator_reinit_interval = generator_reinit_interval
        self.reset_bn_history_on_reinit = reset_bn_history_on_reinit
        self.noisy_layers = [
            m for m in self.generator.modules()
            if isinstance(m, PlainNoisyLinear)
        ]

    def begin_iteration(self) -> None:
        t, life = self.iteration, self.generator_reinit_interval
        due = life is not None and t > 0 and (
            t % life == 0 or (t - self.warmup_iters) % life == 0)
        if not due:
            return
        for module in self.generator.modules():
            if hasattr(module, 'reset_parameters'):
                module.reset_parameters()
        self.optimizer_g.state.clear()
        if self.reset_bn_history_on_reinit:
            self.bn_history, self._last_bn_stats = [], None

    def arrange_targets(self, targets: torch.Tensor) -> torch.Tensor:
        """``B // C`` blocks 0..C-1, then the first ``B % C`` drawn
        targets: every noisy layer sees one sample of each class."""
        c, n = self.num_classes, len(targets)
        blocks = torch.arange(c, device=targets.device).repeat(n // c)
        return torch.cat([blocks, targets[:n % c]])

    def begin_task(self, latents: torch.Tensor):
        self.optimizer_g.state.clear()
        for layer in self.noisy_layers:
            layer.redraw()
        return self.generator, self.optimizer_g, latents, None


def build_fashion_mnist_nayer(device='cpu') -> PlainNAYER:
    """The Fashion-MNIST config's networks (random weights; the
    all-MiniLM-L6-v2 label embeddings) and recipe."""
    table = torch.load(FASHION_MNIST_EMBEDDINGS, map_location='cpu',
                       weights_only=True)
    if isinstance(table, dict):
        table = table['embeddings']
    return PlainNAYER(
        teacher=PlainLeNet5(1.0),
        student=PlainLeNet5(0.5),
        generator=PlainNoisyLayerGenerator(
            table.float(), num_layers=20, chunk_size=10, img_size=32,
            out_channels=1, hidden_channels=16, noise_dim=1000),
        device=device)


if __name__ == '__main__':
    standalone_main(build_fashion_mnist_nayer,
                    'Time the plain-PyTorch NAYER loop (Fashion-MNIST sizes)')
