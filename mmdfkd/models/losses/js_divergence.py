import torch
import torch.nn.functional as F
from torch import nn

from mmdfkd.registry import MODELS


@MODELS.register_module()
class JSDivergence(nn.Module):
    """Jensen-Shannon divergence between teacher and student predictions::

        p = softmax(t / tau), q = softmax(s / tau), m = (p + q) / 2
        L = w * 1/N * sum_i [ KL(p_i || m_i) + KL(q_i || m_i) ] / 2

    With a negative weight it is the "competition" (ADI) term of
    DeepInversion (Yin et al., CVPR 2020, Eq. 8: 1 - JS, the constant does
    not change gradients) and the adversarial term of TA-DFKD
    (Shin & Choi, AAAI 2024), both at tau = 3.

    Args:
        tau (float): Temperature. Defaults to 3.
        loss_weight (float): Weight w. Defaults to 1.
        prob_clamp (tuple, optional): Clamp both distributions to this range
            before mixing, as the TA-DFKD reference does with (0.01, 0.99);
            None (default) leaves them exact.
        teacher_detach (bool): Block gradients through the teacher.
            Defaults to False because this loss usually trains a generator.
    """

    def __init__(self,
                 tau: float = 3.0,
                 loss_weight: float = 1.0,
                 prob_clamp=None,
                 teacher_detach: bool = False) -> None:
        super().__init__()
        self.tau = tau
        self.loss_weight = loss_weight
        self.prob_clamp = prob_clamp
        self.teacher_detach = teacher_detach

    def forward(self, preds_S: torch.Tensor,
                preds_T: torch.Tensor) -> torch.Tensor:
        if self.teacher_detach:
            preds_T = preds_T.detach()
        p = F.softmax(preds_T / self.tau, dim=1)
        q = F.softmax(preds_S / self.tau, dim=1)
        if self.prob_clamp is not None:
            p = p.clamp(*self.prob_clamp)
            q = q.clamp(*self.prob_clamp)
        log_m = ((p + q) / 2).log()
        js = 0.5 * (F.kl_div(log_m, p, reduction='batchmean') +
                    F.kl_div(log_m, q, reduction='batchmean'))
        return self.loss_weight * js
