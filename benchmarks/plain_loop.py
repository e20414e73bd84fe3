"""What the plain reference loops share: the networks and optimisers of a
loop, latent sampling, optimiser construction and a stand-alone timing
entry point (no mmengine)."""
import argparse
import time
from collections.abc import Callable, Iterable

import torch
from torch import nn


def build_optimizer(spec: tuple[str, dict],
                    params: Iterable[torch.nn.Parameter]):
    """``('Adam', dict(lr=1e-3))`` -> ``torch.optim.Adam(params, lr=1e-3)``."""
    name, kwargs = spec
    optimizer_cls = getattr(torch.optim, name, None)
    if optimizer_cls is None:
        raise ValueError(f'torch.optim has no optimiser {name!r}')
    return optimizer_cls(params, **kwargs)


def synchronize(device: torch.device) -> None:
    if device.type == 'cuda':
        torch.cuda.synchronize(device)


class PlainLoop:
    """A frozen teacher, a student and a generator with one bare
    ``torch.optim`` optimiser each for the student and the generator; a
    subclass writes one training iteration in :meth:`train_step`.

    Args:
        teacher (nn.Module): Frozen teacher (put in eval mode here).
        student (nn.Module): Student (train mode).
        generator (nn.Module): Generator (train mode).
        batch_size (int): Images per generator batch.
        latent_dim (int): Size of z.
        generator_optimizer (tuple): ``(torch.optim name, kwargs)`` of the
            generator's optimiser.
        student_optimizer (tuple): The same for the student.
        num_classes (int): Range of the drawn targets. Defaults to 10.
        device (str | torch.device): Defaults to 'cpu'.
    """

    #: generator batches one iteration draws (latents[:, k], targets[:, k])
    draws_per_iteration = 1
    #: whether the loop reads the drawn target labels (DAFL and DFAD do
    #: not, and then none are drawn)
    uses_targets = False

    def __init__(self,
                 teacher: nn.Module,
                 student: nn.Module,
                 generator: nn.Module,
                 batch_size: int,
                 latent_dim: int,
                 generator_optimizer: tuple[str, dict],
                 student_optimizer: tuple[str, dict],
                 num_classes: int = 10,
                 device='cpu') -> None:
        self.device = torch.device(device)
        self.teacher = teacher.to(self.device).eval().requires_grad_(False)
        self.student = student.to(self.device).train()
        self.generator = generator.to(self.device).train()
        self.batch_size = batch_size
        self.latent_dim = latent_dim
        self.num_classes = num_classes
        self.optimizer_g = build_optimizer(generator_optimizer,
                                           self.generator.parameters())
        self.optimizer_s = build_optimizer(student_optimizer,
                                           self.student.parameters())

    @property
    def images_per_iteration(self) -> int:
        return self.draws_per_iteration * self.batch_size

    def sample_batch(self) -> tuple[torch.Tensor, torch.Tensor | None]:
        """z ~ N(0, I) shaped (N, draws, latent_dim) and, if the loop uses
        them, uniform targets (N, draws), like mmdfkd's latent batches."""
        latents = torch.randn(self.batch_size, self.draws_per_iteration,
                              self.latent_dim, device=self.device)
        targets = None
        if self.uses_targets:
            targets = torch.randint(
                self.num_classes, (self.batch_size, self.draws_per_iteration),
                device=self.device)
        return latents, targets

    def train_step(self, latents: torch.Tensor,
                   targets: torch.Tensor | None = None
                   ) -> dict[str, torch.Tensor]:
        """One iteration; returns the losses (detached) under mmdfkd's log
        names."""
        raise NotImplementedError


def standalone_main(build_loop: Callable[[torch.device], PlainLoop],
                    description: str) -> None:
    """Time a plain loop on its own: ``python benchmarks/plain_<m>.py``.

    Args:
        build_loop: Called with the device, returns a :class:`PlainLoop`.
        description: The argparse description.
    """
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument('--iters', type=int, default=50)
    parser.add_argument('--warmup', type=int, default=5)
    parser.add_argument('--device', default='cpu', choices=['cpu', 'cuda'])
    args = parser.parse_args()
    torch.manual_seed(0)
    loop = build_loop(torch.device(args.device))
    for _ in range(args.warmup):
        loop.train_step(*loop.sample_batch())
    synchronize(loop.device)
    start = time.perf_counter()
    for _ in range(args.iters):
        losses = loop.train_step(*loop.sample_batch())
    synchronize(loop.device)
    elapsed = time.perf_counter() - start
    print(f'{args.iters / elapsed:.2f} iterations/s, '
          f'{args.iters * loop.images_per_iteration / elapsed:.0f} '
          'synthetic images/s; last losses: ' +
          ', '.join(f'{k}={float(v):.4f}' for k, v in losses.items()))
