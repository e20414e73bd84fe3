import math

import torch
from torch import nn

from mmdfkd.registry import TASK_UTILS

REGULARIZERS = ('log', 'hard', 'soft')


@TASK_UTILS.register_module()
class SelfPacedWeight(nn.Module):
    """Self-paced sample weights with a growing age parameter, the student
    curriculum of CuDFKD (Li et al., "Dynamic Data-Free Knowledge
    Distillation by Easy-to-Hard Learning Strategy", arXiv 2208.13648) and
    AdaDFKD (Li et al., Neural Networks 2024).

    Self-paced learning (Kumar et al., NeurIPS 2010) minimises
    ``sum_i v_i * l_i + f(v_i; lambda)`` over the model and the weights v;
    for fixed losses the optimal weight of a sample with loss l is
    closed-form, and the "age" lambda grows so that ever harder samples are
    admitted::

        lambda_t = lambda_0 + alpha * min(t, max_steps)

        'log'  (CuDFKD's ``curr_log``, a logistic regulariser):
               v = (1 + exp(-lambda)) / (1 + exp(l - lambda))
                 = (1 + exp(-lambda)) * sigmoid(lambda - l)
        'hard' (Kumar et al.):   v = 1[l < lambda]
        'soft' (linear):         v = max(0, 1 - l / lambda)

    so v = 1 at l = 0 ('log' and 'soft') and v falls off for losses beyond
    lambda. t counts the calls of :meth:`step` (one per student step); it is
    a buffer, so a resumed run continues the schedule. The weights are
    computed without gradient: they are the fixed v of the alternating
    minimisation, not a function the student can shrink.

    Args:
        lambda_0 (float): Initial age lambda_0.
        alpha (float): Growth of lambda per step. Defaults to 0. CuDFKD uses
            1e-4 on CIFAR-10 and 2e-5 otherwise.
        max_steps (int, optional): lambda stops growing after this many
            steps (the reference's ``iter_0``). Defaults to None (never).
        regularizer (str): 'log', 'hard' or 'soft'. Defaults to 'log'.
    """

    def __init__(self,
                 lambda_0: float,
                 alpha: float = 0.0,
                 max_steps: int | None = None,
                 regularizer: str = 'log') -> None:
        super().__init__()
        if regularizer not in REGULARIZERS:
            raise ValueError(f'regularizer must be one of {REGULARIZERS}, '
                             f'got {regularizer!r}')
        if max_steps is not None and max_steps < 0:
            raise ValueError(f'max_steps must be >= 0 or None, got '
                             f'{max_steps}')
        self.lambda_0 = float(lambda_0)
        self.alpha = float(alpha)
        self.max_steps = max_steps
        self.regularizer = regularizer
        self.register_buffer('num_steps', torch.zeros((), dtype=torch.long))

    @property
    def lam(self) -> float:
        """The current age lambda_t."""
        t = int(self.num_steps)
        if self.max_steps is not None:
            t = min(t, self.max_steps)
        return self.lambda_0 + self.alpha * t

    @torch.no_grad()
    def forward(self, losses: torch.Tensor) -> torch.Tensor:
        """Weights v (same shape as ``losses``, no gradient) at lambda_t."""
        losses = losses.detach()
        lam = self.lam
        if self.regularizer == 'log':
            return (1 + math.exp(-lam)) * torch.sigmoid(lam - losses)
        if lam <= 0:
            raise ValueError(f"the '{self.regularizer}' self-paced weight "
                             f'needs lambda > 0, got {lam}')
        if self.regularizer == 'hard':
            return (losses < lam).to(losses.dtype)
        return (1 - losses / lam).clamp_min(0)

    def step(self) -> None:
        """Advance the age by one step."""
        self.num_steps.add_(1)
