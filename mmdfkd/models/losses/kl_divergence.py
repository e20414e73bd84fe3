import torch
import torch.nn.functional as F
from torch import nn

from mmdfkd.registry import MODELS


def at_least_float32(*logits: torch.Tensor) -> tuple:
    """The logits in at least float32 (float64 stays float64), for the
    softmax-based losses also under bfloat16 autocast: at a high temperature
    the log-probabilities differ from log(1/C) by less than bfloat16's
    spacing, and their rounding swamped the divergence (a KD loss at
    tau = 20 read about -1.5). A no-op on float32 logits."""
    return tuple(x.to(torch.promote_types(x.dtype, torch.float32))
                 for x in logits)


@MODELS.register_module()
class KLDivergence(nn.Module):
    """Temperature-scaled Kullback-Leibler divergence of the student from the
    teacher (Hinton et al., "Distilling the Knowledge in a Neural Network",
    2015)::

        L = w * tau^2 * 1/N * sum_i KL( softmax(t_i / tau) || softmax(s_i / tau) )

    A negative ``loss_weight`` with ``teacher_detach=False`` makes it the
    generator's adversarial term of ZSKT (Micaelli & Storkey, NeurIPS 2019),
    which maximises the student-teacher disagreement. The loss is computed
    in at least float32 whatever the logits' dtype (e.g. bfloat16 under
    autocast).

    Args:
        tau (float): Temperature. Defaults to 1.
        reduction (str): ``'batchmean'`` (sum over classes, mean over the
            batch, the mathematical KL), ``'sum'`` or ``'mean'`` (mean over
            all elements, as ``nn.KLDivLoss`` does). Defaults to 'batchmean'.
        loss_weight (float): Weight w. Defaults to 1.
        teacher_detach (bool): Block gradients through the teacher's logits.
            Must be False when the loss trains a generator. Defaults to True.
    """

    def __init__(self,
                 tau: float = 1.0,
                 reduction: str = 'batchmean',
                 loss_weight: float = 1.0,
                 teacher_detach: bool = True) -> None:
        super().__init__()
        if reduction not in ('batchmean', 'sum', 'mean'):
            raise ValueError(f'unknown reduction {reduction!r}')
        self.tau = tau
        self.reduction = reduction
        self.loss_weight = loss_weight
        self.teacher_detach = teacher_detach

    def forward(self, preds_S: torch.Tensor,
                preds_T: torch.Tensor) -> torch.Tensor:
        if self.teacher_detach:
            preds_T = preds_T.detach()
        preds_S, preds_T = at_least_float32(preds_S, preds_T)
        log_p_s = F.log_softmax(preds_S / self.tau, dim=1)
        log_p_t = F.log_softmax(preds_T / self.tau, dim=1)
        # elementwise KL summed, then normalised here: F.kl_div's own
        # 'mean' is deprecated and will change meaning
        loss = F.kl_div(log_p_s, log_p_t, reduction='sum', log_target=True)
        if self.reduction == 'batchmean':
            loss = loss / preds_S.shape[0]
        elif self.reduction == 'mean':
            loss = loss / preds_S.numel()
        return self.loss_weight * self.tau**2 * loss
