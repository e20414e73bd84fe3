import torch
import torch.nn.functional as F
from torch import nn

from mmdfkd.registry import MODELS, TASK_UTILS

from .kl_divergence import at_least_float32

DISTANCES = ('kl', 'l1')


@MODELS.register_module()
class SelfPacedDistillationLoss(nn.Module):
    """Knowledge distillation weighted by self-paced weights, the student
    loss of CuDFKD (Li et al., "Dynamic Data-Free Knowledge Distillation by
    Easy-to-Hard Learning Strategy", arXiv 2208.13648). Per sample i of a
    batch of N::

        l_i = tau^2 * KL( softmax(t_i / tau) || softmax(s_i / tau) )  'kl'
        l_i = 1/C * sum_c |s_ic - t_ic|                                'l1'

    ``per_sample=True`` (self-paced learning: one weight per sample)::

        L = w * 1/N * sum_i v(l_i; lambda_t) * l_i

    ``per_sample=False`` (the reference code, which weighs the batch-mean
    loss, so v is one weight per batch)::

        l = 1/N * sum_i l_i,   L = w * v(l; lambda_t) * l

    v and lambda_t come from :class:`SelfPacedWeight` (``self_paced``;
    ``mmdfkd.models.utils``), with no gradient through v. The batch mean of
    l_i equals the plain KD loss of the reference (``KLDiv(T)``, batch mean
    times T^2; ``nn.L1Loss()``), so with v = 1 both forms reduce to it. Each call in training mode is one
    student step: lambda advances after it. ``last_weight`` (mean v) and
    ``last_lambda`` of the latest call are kept for logging.

    Args:
        self_paced (dict, optional): :class:`SelfPacedWeight` config
            (``lambda_0``, ``alpha``, ``regularizer``, ...); ``type`` may be
            omitted. Defaults to CuDFKD's CIFAR-10 setting,
            ``dict(lambda_0=2.0, alpha=1e-4)``.
        distance (str): 'kl' or 'l1'. Defaults to 'kl'.
        tau (float): Temperature of 'kl'. Defaults to 1.
        per_sample (bool): Weigh each sample (True) or the batch-mean loss
            (False, the reference code). Defaults to True.
        loss_weight (float): Weight w. Defaults to 1.
    """

    def __init__(self,
                 self_paced: dict | None = None,
                 distance: str = 'kl',
                 tau: float = 1.0,
                 per_sample: bool = True,
                 loss_weight: float = 1.0) -> None:
        super().__init__()
        if distance not in DISTANCES:
            raise ValueError(f'distance must be one of {DISTANCES}, got '
                             f'{distance!r}')
        if tau <= 0:
            raise ValueError(f'tau must be > 0, got {tau}')
        if self_paced is None:
            self_paced = {'lambda_0': 2.0, 'alpha': 1e-4}
        self.self_paced = TASK_UTILS.build(
            {'type': 'SelfPacedWeight', **self_paced})
        self.distance = distance
        self.tau = tau
        self.per_sample = per_sample
        self.loss_weight = loss_weight
        self.last_weight: torch.Tensor | None = None
        self.last_lambda: float | None = None

    def sample_losses(self, preds_S: torch.Tensor,
                      preds_T: torch.Tensor) -> torch.Tensor:
        """Per-sample distances l_i, shape (N,); the teacher is detached."""
        preds_T = preds_T.detach()
        if self.distance == 'l1':
            return (preds_S - preds_T).abs().mean(dim=1)
        preds_S, preds_T = at_least_float32(preds_S, preds_T)
        log_p_s = F.log_softmax(preds_S / self.tau, dim=1)
        log_p_t = F.log_softmax(preds_T / self.tau, dim=1)
        kl = F.kl_div(log_p_s, log_p_t, reduction='none', log_target=True)
        return self.tau**2 * kl.sum(dim=1)

    def forward(self, preds_S: torch.Tensor,
                preds_T: torch.Tensor) -> torch.Tensor:
        losses = self.sample_losses(preds_S, preds_T)
        if not self.per_sample:
            losses = losses.mean()
        weights = self.self_paced(losses)
        self.last_weight = weights.mean()
        self.last_lambda = self.self_paced.lam
        if self.training:
            self.self_paced.step()
        return self.loss_weight * (weights * losses).mean()
