"""The outer (meta) update of Fast's meta-generator."""
import copy
from typing import List

import torch
from mmengine.dist import all_reduce, get_world_size
from torch import nn

from mmdfkd.registry import TASK_UTILS
from ..utils import unwrap_model


@TASK_UTILS.register_module()
class MetaGeneratorUpdate:
    """Outer update of the meta-learned generator of Fast (Fang et al., "Up
    to 100x Faster Data-free Knowledge Distillation", AAAI 2022).

    Each synthesis task starts from the meta-generator's weights theta: the
    task's "fast" generator theta' is a copy of it, trained for k inner
    steps on the task's synthesis loss L (BN statistics + class prior +
    adversarial term), theta'_0 = theta, theta'_{j+1} = inner_step(
    theta'_j). The meta-generator then moves so that a few steps from it
    suffice, with one of two first-order rules:

    * ``'fomaml'`` (first-order MAML, the reference's default ``is_maml=1``):
      the meta-gradient is the sum of the fast generator's gradients over
      the inner steps, each taken at the fast weights of its step::

          g = sum_{j=0..k-1} grad L(theta'_j)

      (the reference accumulates every inner step's gradient into the
      meta-generator's ``.grad``; with ``fomaml_gradient='last'`` only the
      last accumulated gradient is used, the textbook FOMAML estimate).
    * ``'reptile'`` (Nichol et al. 2018; ``is_maml=0``): the meta-gradient
      points from the adapted weights back to the start::

          g = s * (theta - theta'_k)

      with the reference's hard-coded scale s = 67. With plain SGD at rate
      eps/s this is Reptile's theta <- theta + eps * (theta'_k - theta).

    Either way one step of the meta-optimiser (Fast: Adam with lr =
    lr_g * k, betas (0.5, 0.999)) applies g to theta. Under DDP the
    meta-gradients are averaged over ranks first, so that every rank's
    meta-generator stays identical.

    Usage::

        fast = meta_update.begin(meta_generator)     # theta' = theta
        for _ in range(k):
            loss(fast(z)).backward()                 # grads on theta'
            meta_update.accumulate(meta_generator, fast)
            inner_optimizer.step(); inner_optimizer.zero_grad()
        meta_update.step(meta_generator, fast, meta_optimizer)

    Args:
        mode (str): ``'fomaml'`` or ``'reptile'``. Defaults to 'fomaml'.
        reptile_scale (float): s of the Reptile rule. Defaults to 67 (the
            reference's value).
        fomaml_gradient (str): ``'sum'`` (reference) or ``'last'``.
            Defaults to 'sum'.
    """

    def __init__(self,
                 mode: str = 'fomaml',
                 reptile_scale: float = 67.0,
                 fomaml_gradient: str = 'sum') -> None:
        if mode not in ('fomaml', 'reptile'):
            raise ValueError(
                f"mode must be 'fomaml' or 'reptile', got {mode!r}")
        if fomaml_gradient not in ('sum', 'last'):
            raise ValueError("fomaml_gradient must be 'sum' or 'last', got "
                             f'{fomaml_gradient!r}')
        self.mode = mode
        self.reptile_scale = reptile_scale
        self.fomaml_gradient = fomaml_gradient

    @staticmethod
    def _paired_parameters(meta: nn.Module, fast: nn.Module) -> List:
        meta, fast = unwrap_model(meta), unwrap_model(fast)
        meta_params = list(meta.named_parameters())
        fast_params = list(fast.named_parameters())
        if [n for n, _ in meta_params] != [n for n, _ in fast_params]:
            raise ValueError('the fast generator must be a copy of the meta '
                             'generator (from MetaGeneratorUpdate.begin)')
        return [(p, q) for (_, p), (_, q) in zip(
            meta_params, fast_params, strict=True)]

    def begin(self, meta_generator: nn.Module) -> nn.Module:
        """Clear the meta-gradients and return the fast generator: a copy
        of the meta-generator (weights and buffers) without gradients."""
        meta_generator = unwrap_model(meta_generator)
        for p in meta_generator.parameters():
            p.grad = None
        fast = copy.deepcopy(meta_generator)
        for p in fast.parameters():
            p.grad = None
        return fast

    @torch.no_grad()
    def accumulate(self, meta_generator: nn.Module,
                   fast_generator: nn.Module) -> None:
        """After an inner backward pass: FOMAML takes the fast generator's
        current gradient into the meta-gradient (Reptile needs nothing)."""
        if self.mode != 'fomaml':
            return
        for meta_p, fast_p in self._paired_parameters(
                meta_generator, fast_generator):
            if fast_p.grad is None:
                continue
            if meta_p.grad is None or self.fomaml_gradient == 'last':
                meta_p.grad = fast_p.grad.detach().clone()
            else:
                meta_p.grad.add_(fast_p.grad)

    @torch.no_grad()
    def meta_gradient(self, meta_generator: nn.Module,
                      fast_generator: nn.Module) -> None:
        """Set the meta-generator's ``.grad`` to the outer gradient g."""
        pairs = self._paired_parameters(meta_generator, fast_generator)
        if self.mode == 'reptile':
            for meta_p, fast_p in pairs:
                meta_p.grad = self.reptile_scale * (meta_p - fast_p)
        if get_world_size() > 1:
            for meta_p, _ in pairs:
                if meta_p.grad is not None:
                    all_reduce(meta_p.grad, op='mean')

    def step(self, meta_generator: nn.Module, fast_generator: nn.Module,
             meta_optimizer) -> None:
        """Apply the outer update with ``meta_optimizer`` (a torch optimiser
        or an mmengine ``OptimWrapper`` over the meta-generator) and clear
        the meta-gradients."""
        self.meta_gradient(meta_generator, fast_generator)
        meta_optimizer.step()
        meta_optimizer.zero_grad()
