"""AdaDFKD's student loss: self-paced KD plus the in-batch InfoNCE term."""
import torch

from mmdfkd.registry import MODELS

from .self_paced_distillation_loss import SelfPacedDistillationLoss


@MODELS.register_module()
class SelfPacedInfoNCEDistillationLoss(SelfPacedDistillationLoss):
    """The student loss of AdaDFKD (Li et al., Neural Networks 2024, doi
    10.1016/j.neunet.2024.106386): CuDFKD's self-paced knowledge
    distillation (:class:`SelfPacedDistillationLoss`) whose per-sample loss
    also holds the in-batch teacher-to-student InfoNCE term
    (:class:`InBatchInfoNCELoss`, weight s = its ``loss_weight``, the
    reference's ``--s_nce``)::

        l_i = KD(s_i, t_i) + s * nce_i

        per_sample=True:   L = w * 1/N sum_i v(l_i; lambda_t) * l_i
        per_sample=False:  l = 1/N sum_i l_i,  L = w * v(l; lambda_t) * l

    with v the self-paced weight (no gradient). The reference code adds the
    batch-mean InfoNCE to the batch-mean KD loss *before* computing v, so
    the relation term is weighted with the KD term (``per_sample=False``
    is exactly that code). ``last_kd`` and ``last_info_nce`` (batch means
    of KD and nce, unweighted) of the latest call are kept for logging.

    Args:
        info_nce (dict): :class:`InBatchInfoNCELoss` arguments
            (``feature_dim``, ``student_feature_dim``, ``temperature``,
            ``loss_weight`` = s); ``type`` may be omitted.
        **kwargs: :class:`SelfPacedDistillationLoss` arguments.
    """

    def __init__(self, info_nce: dict, **kwargs) -> None:
        super().__init__(**kwargs)
        self.info_nce = MODELS.build({'type': 'InBatchInfoNCELoss',
                                      **info_nce})
        self.last_kd: torch.Tensor | None = None
        self.last_info_nce: torch.Tensor | None = None

    def forward(self, preds_S: torch.Tensor, preds_T: torch.Tensor,
                feats_S: torch.Tensor,
                feats_T: torch.Tensor) -> torch.Tensor:
        kd = self.sample_losses(preds_S, preds_T)
        nce = self.info_nce.sample_losses(feats_S, feats_T)
        self.last_kd = kd.detach().mean()
        self.last_info_nce = nce.detach().mean()
        losses = kd + self.info_nce.loss_weight * nce
        if not self.per_sample:
            losses = losses.mean()
        weights = self.self_paced(losses)
        self.last_weight = weights.mean()
        self.last_lambda = self.self_paced.lam
        if self.training:
            self.self_paced.step()
        return self.loss_weight * (weights * losses).mean()
