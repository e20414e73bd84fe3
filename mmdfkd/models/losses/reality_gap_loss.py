import math

import torch
import torch.nn.functional as F
from torch import nn

from mmdfkd.registry import MODELS


@MODELS.register_module()
class RealityGapLoss(nn.Module):
    """The gap-steered synthesis loss of GapSSG (Wang, Qian, Liu, Rui, Wang,
    "Unpacking the Gap Box Against Data-Free Knowledge Distillation",
    T-PAMI 2024, doi 10.1109/TPAMI.2024.3379505): the teacher-student
    "reality gap" is unpacked into a *derived gap* and an *inherent gap*,
    and the generator makes samples on which both point to the target
    class, weighted by how far student and teacher disagree::

        g     = 1/N sum_i max_c | softmax(s_i)_c - softmax(t_i)_c |
                (on detached softmaxes: a weight, not a training signal)
        L_dg  = CE((t - s) / 2, y)                     derived gap
        L_ig  = CE(t + s, y)                           inherent gap
        L     = w * a * (1 - exp(-g)) * (L_dg + b * L_ig)

    with t, s the teacher's and the student's logits of a synthetic batch,
    y its target labels, CE the batch-mean cross-entropy, a the adaptive
    weight scale (0.5) and b the inherent-gap weight (0.2). L_dg is low
    where the *difference* logits t - s predict y, i.e. where the teacher is
    confident about y and the student is not; L_ig keeps the sample a
    likely y for both. The adaptive weight a(1 - exp(-g)) is about 0 when
    student and teacher agree on the batch and grows with their largest
    per-class probability gap. The method's full generator loss adds the
    BN-statistics prior: L_G = L_BN + L (``configs/_base_/algorithms/
    gapssg.py``).

    The formula and the defaults are those of the authors' released code
    (github.com/hfutqian/GapSSG, ``datafree/synthesis/gapssg_generative.py``,
    where all weights are hard-coded); the paper's equations could not be
    checked against it here, so any difference between the two is not
    reflected.

    Gradients reach the inputs through both t and s in the two CE terms
    (the student's parameters are frozen during synthesis by the
    algorithm); the weight g carries none.

    Args:
        adaptive_weight_scale (float): a. Defaults to 0.5.
        inherent_gap_weight (float): b, the weight of the inherent-gap term
            CE(t + s, y). Defaults to 0.2.
        loss_weight (float): w. Defaults to 1.
    """

    def __init__(self,
                 adaptive_weight_scale: float = 0.5,
                 inherent_gap_weight: float = 0.2,
                 loss_weight: float = 1.0) -> None:
        super().__init__()
        for name, value in (('adaptive_weight_scale', adaptive_weight_scale),
                            ('inherent_gap_weight', inherent_gap_weight)):
            if not math.isfinite(value) or value < 0:
                raise ValueError(f'{name} must be a non-negative number, got '
                                 f'{value!r}')
        self.adaptive_weight_scale = adaptive_weight_scale
        self.inherent_gap_weight = inherent_gap_weight
        self.loss_weight = loss_weight

    @staticmethod
    def probability_gap(preds_S: torch.Tensor,
                        preds_T: torch.Tensor) -> torch.Tensor:
        """g: the batch mean of the largest per-class gap between the
        student's and the teacher's softmax probabilities (no gradient)."""
        with torch.no_grad():
            gap = (preds_S.softmax(dim=1) - preds_T.softmax(dim=1)).abs()
            return gap.amax(dim=1).mean()

    def forward(self, preds_S: torch.Tensor, preds_T: torch.Tensor,
                targets: torch.Tensor) -> torch.Tensor:
        if preds_S.shape != preds_T.shape:
            raise ValueError('student and teacher logits differ in shape: '
                             f'{tuple(preds_S.shape)} vs '
                             f'{tuple(preds_T.shape)}')
        gap = self.probability_gap(preds_S, preds_T)
        adaptive_weight = self.adaptive_weight_scale * (1 - torch.exp(-gap))
        derived_gap = F.cross_entropy((preds_T - preds_S) / 2, targets)
        inherent_gap = F.cross_entropy(preds_T + preds_S, targets)
        return self.loss_weight * adaptive_weight * (
            derived_gap + self.inherent_gap_weight * inherent_gap)
