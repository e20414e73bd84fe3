import torch
import torch.nn.functional as F

from mmdfkd.registry import MODELS

from .kl_divergence import KLDivergence, at_least_float32


@MODELS.register_module()
class AgreementMaskedKLDivergence(KLDivergence):
    """Temperature-scaled KL divergence of the student from the teacher,
    counted only on the samples where both predict the same class::

        m_i = 1[argmax_c s_ic == argmax_c t_ic]
        L   = w * tau^2 * 1/N * sum_i m_i * KL( softmax(t_i / tau)
                                                || softmax(s_i / tau) )

    or, with ``direction='reverse'``, m_i * KL(softmax(s_i / tau) ||
    softmax(t_i / tau)) (CPNet, Chen et al., ICCV 2025).

    (``reduction='batchmean'``; ``'sum'`` drops the 1/N, ``'mean'`` divides
    by N * C). The mask is not differentiated. With a negative
    ``loss_weight`` and ``teacher_detach=False`` it is the generator's
    adversarial term of CuDFKD (Li et al., "Dynamic Data-Free Knowledge
    Distillation by Easy-to-Hard Learning Strategy", arXiv 2208.13648;
    tau = 3) and the "decision adversarial" term of Fast / NAYER (tau = 1):
    the generator pushes samples across the student's decision boundary
    while the student still agrees with the teacher, and stops pushing
    where they already disagree, so that the synthetic distribution does
    not drift away to regions only the adversarial term rewards.

    Args:
        tau (float): Temperature. Defaults to 1.
        reduction (str): ``'batchmean'``, ``'sum'`` or ``'mean'``.
            Defaults to 'batchmean' (masked samples count in N).
        loss_weight (float): Weight w (negative for an adversarial term).
            Defaults to 1.
        teacher_detach (bool): Block gradients through the teacher's logits.
            Must be False when the loss trains a generator. Defaults to
            True.
        direction (str): ``'forward'``, KL(p_T || p_S) (Fast, NAYER,
            CuDFKD), or ``'reverse'``, KL(p_S || p_T) (CPNet). Defaults to
            'forward'.
    """

    def __init__(self,
                 tau: float = 1.0,
                 reduction: str = 'batchmean',
                 loss_weight: float = 1.0,
                 teacher_detach: bool = True,
                 direction: str = 'forward') -> None:
        super().__init__(tau, reduction, loss_weight, teacher_detach)
        if direction not in ('forward', 'reverse'):
            raise ValueError("direction must be 'forward' (KL(p_T || p_S)) "
                             f"or 'reverse' (KL(p_S || p_T)), got "
                             f'{direction!r}')
        self.direction = direction

    def forward(self, preds_S: torch.Tensor,
                preds_T: torch.Tensor) -> torch.Tensor:
        if self.teacher_detach:
            preds_T = preds_T.detach()
        preds_S, preds_T = at_least_float32(preds_S, preds_T)
        agree = (preds_S.argmax(dim=1) == preds_T.argmax(dim=1)).to(
            preds_S.dtype).detach()
        log_p_s = F.log_softmax(preds_S / self.tau, dim=1)
        log_p_t = F.log_softmax(preds_T / self.tau, dim=1)
        # F.kl_div(log q, log p) = KL(p || q)
        log_q, log_p = ((log_p_s, log_p_t) if self.direction == 'forward'
                        else (log_p_t, log_p_s))
        per_sample = F.kl_div(
            log_q, log_p, reduction='none', log_target=True).sum(dim=1)
        loss = (agree * per_sample).sum()
        if self.reduction == 'batchmean':
            loss = loss / preds_S.shape[0]
        elif self.reduction == 'mean':
            loss = loss / preds_S.numel()
        return self.loss_weight * self.tau**2 * loss
