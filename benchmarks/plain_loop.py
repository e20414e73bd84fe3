"""What the plain reference loops share: optimiser construction and a
stand-alone timing entry point (no mmengine)."""
import argparse
import time
from collections.abc import Callable, Iterable

import torch


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


def standalone_main(build_loop: Callable[[torch.device], object],
                    description: str) -> None:
    """Time a plain loop on its own: ``python benchmarks/plain_<m>.py``.

    Args:
        build_loop: Called with the device, returns an object with
            ``sample_latents()``, ``train_step(latents)`` and ``device``.
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
        loop.train_step(loop.sample_latents())
    synchronize(loop.device)
    start = time.perf_counter()
    for _ in range(args.iters):
        losses = loop.train_step(loop.sample_latents())
    synchronize(loop.device)
    elapsed = time.perf_counter() - start
    print(f'{args.iters / elapsed:.2f} iterations/s, '
          f'{args.iters * loop.images_per_iteration / elapsed:.0f} '
          'synthetic images/s; last losses: ' +
          ', '.join(f'{k}={float(v):.4f}' for k, v in losses.items()))
