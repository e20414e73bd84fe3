"""AdaDFKD's in-batch teacher-to-student InfoNCE term of the student."""
import torch
import torch.nn.functional as F
from torch import nn

from mmdfkd.registry import MODELS

from .relation_feature_projection import RelationFeatureProjection


@MODELS.register_module()
class InBatchInfoNCELoss(nn.Module):
    """In-batch InfoNCE from teacher to student features, the student's
    relation term of AdaDFKD (Li et al., Neural Networks 2024, doi
    10.1016/j.neunet.2024.106386): each teacher feature must pick the
    student feature of the same sample among the batch. With teacher
    features f_t (detached) and student features f_s of N samples::

        q_i = f_t,i / ||f_t,i||,    k_j = P f_s,j / ||P f_s,j||
        l_i = -log( exp(q_i . k_i / tau) / sum_j exp(q_i . k_j / tau) )
        L   = w * 1/N sum_i l_i

    (cross-entropy of the teacher-by-student cosine-similarity matrix over
    tau with diagonal labels). P is the fixed
    :class:`RelationFeatureProjection` from the student's width to the
    teacher's, the identity when they agree; the reference code draws a new
    random ``nn.Linear`` at every call instead. :meth:`sample_losses`
    returns the per-sample l_i, which the self-paced student loss weighs
    together with the KD term (:class:`SelfPacedInfoNCEDistillationLoss`).

    Args:
        feature_dim (int): Teacher feature width d_t.
        student_feature_dim (int, optional): Student feature width d_s;
            defaults to ``feature_dim``.
        temperature (float): tau. Defaults to 0.07.
        loss_weight (float): w (the reference's ``--s_nce``). Defaults to 1.
        projection_seed (int): Seed of P; the same as the generator's
            :class:`RelationRefinementLoss` gives the same map. Defaults to 0.
    """

    def __init__(self,
                 feature_dim: int,
                 student_feature_dim: int | None = None,
                 temperature: float = 0.07,
                 loss_weight: float = 1.0,
                 projection_seed: int = 0) -> None:
        super().__init__()
        if temperature <= 0:
            raise ValueError(f'temperature must be positive, got '
                             f'{temperature}')
        self.feature_dim = feature_dim
        self.temperature = temperature
        self.loss_weight = loss_weight
        self.projection = RelationFeatureProjection(
            student_feature_dim or feature_dim, feature_dim,
            seed=projection_seed)

    def sample_losses(self, feats_S: torch.Tensor,
                      feats_T: torch.Tensor) -> torch.Tensor:
        """Per-sample l_i, shape (N,); the teacher is detached."""
        if feats_T.dim() != 2 or feats_T.shape[1] != self.feature_dim:
            raise ValueError(
                f'InBatchInfoNCELoss expects (N, {self.feature_dim}) teacher '
                f'features, got {tuple(feats_T.shape)}: set feature_dim to '
                'the width of the recorded teacher feature')
        if len(feats_S) != len(feats_T):
            raise ValueError(f'{len(feats_T)} teacher but {len(feats_S)} '
                             'student features')
        query = F.normalize(feats_T.detach(), dim=1)
        keys = F.normalize(self.projection(feats_S), dim=1)
        logits = query @ keys.to(query.dtype).t() / self.temperature
        labels = torch.arange(len(logits), device=logits.device)
        return F.cross_entropy(logits.float(), labels, reduction='none')

    def forward(self, feats_S: torch.Tensor,
                feats_T: torch.Tensor) -> torch.Tensor:
        return self.loss_weight * self.sample_losses(feats_S, feats_T).mean()
