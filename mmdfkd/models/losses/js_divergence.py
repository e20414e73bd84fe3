import torch
import torch.nn.functional as F
from torch import nn

from mmdfkd.registry import MODELS

from .kl_divergence import at_least_float32


@MODELS.register_module()
class JSDivergence(nn.Module):
    """Jensen-Shannon divergence between teacher and student predictions::

        p = softmax(t / tau), q = softmax(s / tau), m = (p + q) / 2
        L = w * 1/N * sum_i [ KL(p_i || m_i) + KL(q_i || m_i) ] / 2

    With a negative weight it is the "competition" (ADI) term of
    DeepInversion (Yin et al., CVPR 2020, Eq. 8: 1 - JS, the constant does
    not change gradients) and the adversarial term of TA-DFKD
    (Shin & Choi, AAAI 2024), both at tau = 3.

    Options that reproduce the code of those two references (defaults keep
    the definition above):

    * ``complement=True``: ``L = w * (1 - clamp(JS, 0, 1))``, their
      ``1 - torch.clamp(js, 0, 1)``; use a positive weight. The clamp stops
      the gradient wherever JS >= 1.
    * ``reduction='mean'``: average over all N x C entries instead of
      summing over classes (``nn.KLDivLoss()``'s default 'mean', which the
      references call), i.e. JS / C.
    * ``kl_direction='from_mixture'``: what ``nn.KLDivLoss()(p.log(), m)``
      in those references computes, ``[KL(m || p) + KL(m || q)] / 2``, with
      the mixture ``m`` taken from the unclamped p, q and then clamped like
      them.

    TA-DFKD's code is ``complement=True, reduction='mean',
    kl_direction='from_mixture', prob_clamp=(0.01, 0.99)``.

    Args:
        tau (float): Temperature. Defaults to 3.
        loss_weight (float): Weight w. Defaults to 1.
        prob_clamp (tuple, optional): Clamp the distributions to this range,
            as the DeepInversion and TA-DFKD code do with (0.01, 0.99);
            None (default) leaves them exact.
        teacher_detach (bool): Block gradients through the teacher.
            Defaults to False because this loss usually trains a generator.
        kl_direction (str): 'to_mixture' (default, KL(p || m) + KL(q || m))
            or 'from_mixture' (KL(m || p) + KL(m || q)).
        reduction (str): 'batchmean' (default, sum over classes, mean over
            samples) or 'mean' (mean over samples and classes).
        complement (bool): Return ``w * (1 - clamp(JS, 0, 1))``. Defaults to
            False.
    """

    def __init__(self,
                 tau: float = 3.0,
                 loss_weight: float = 1.0,
                 prob_clamp=None,
                 teacher_detach: bool = False,
                 kl_direction: str = 'to_mixture',
                 reduction: str = 'batchmean',
                 complement: bool = False) -> None:
        super().__init__()
        if kl_direction not in ('to_mixture', 'from_mixture'):
            raise ValueError("kl_direction must be 'to_mixture' or "
                             f"'from_mixture', got {kl_direction!r}")
        if reduction not in ('batchmean', 'mean'):
            raise ValueError("reduction must be 'batchmean' or 'mean', got "
                             f'{reduction!r}')
        self.tau = tau
        self.loss_weight = loss_weight
        self.prob_clamp = prob_clamp
        self.teacher_detach = teacher_detach
        self.kl_direction = kl_direction
        self.reduction = reduction
        self.complement = complement

    def forward(self, preds_S: torch.Tensor,
                preds_T: torch.Tensor) -> torch.Tensor:
        if self.teacher_detach:
            preds_T = preds_T.detach()
        preds_S, preds_T = at_least_float32(preds_S, preds_T)
        p = F.softmax(preds_T / self.tau, dim=1)
        q = F.softmax(preds_S / self.tau, dim=1)
        if self.kl_direction == 'to_mixture':
            if self.prob_clamp is not None:
                p = p.clamp(*self.prob_clamp)
                q = q.clamp(*self.prob_clamp)
            log_m = ((p + q) / 2).log()
            total = (F.kl_div(log_m, p, reduction='sum') +
                     F.kl_div(log_m, q, reduction='sum'))
        else:
            m = (p + q) / 2
            if self.prob_clamp is not None:
                p, q, m = (v.clamp(*self.prob_clamp) for v in (p, q, m))
                log_p, log_q = p.log(), q.log()
            else:  # exact log-probabilities: softmax may underflow to 0
                log_p = F.log_softmax(preds_T / self.tau, dim=1)
                log_q = F.log_softmax(preds_S / self.tau, dim=1)
            total = (F.kl_div(log_p, m, reduction='sum') +
                     F.kl_div(log_q, m, reduction='sum'))
        # torch's own 'mean' would warn on every call that it is not
        # 'batchmean'; the references mean it, so it is spelled out here
        count = p.numel() if self.reduction == 'mean' else p.shape[0]
        js = 0.5 * total / count
        if self.complement:
            return self.loss_weight * (1 - js.clamp(0, 1))
        return self.loss_weight * js
