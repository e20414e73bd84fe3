import math

import torch
import torch.nn.functional as F
from torch import nn

from mmdfkd.registry import MODELS


def clamped_pseudo_inverse(matrix: torch.Tensor,
                           singular_value_floor: float) -> torch.Tensor:
    """Moore-Penrose pseudo-inverse from the SVD, with the singular values
    clamped from below at ``singular_value_floor`` (so no direction is
    amplified by more than 1 / floor): for M = U S V^T (reduced SVD),
    M^+ = V diag(1 / max(s, floor)) U^T. Computed in float64."""
    u, s, vh = torch.linalg.svd(matrix.double(), full_matrices=False)
    s = s.clamp(min=singular_value_floor)
    return ((vh.T / s) @ u.T).to(matrix.dtype)


@MODELS.register_module()
class PseudoInverseFeatureAdversarialLoss(nn.Module):
    """Feature-level adversarial term of CPNet (Chen et al., "Coupling the
    Generator with Teacher for Effective Data-Free Knowledge Distillation",
    ICCV 2025; ``compute_dis`` of its code): the label is turned into a
    target in the teacher's penultimate feature space through the
    pseudo-inverse of its (fixed) linear classifier z = f W^T + b.

    With W^+ = (W^T)^+ (C x D, :func:`clamped_pseudo_inverse`, singular
    values clamped at 0.1, computed once) and the logit gap
    delta = ln((1 - eps)(C - 1) / eps) at which softmax gives the
    eps-smoothed one-hot target, every feature on the line::

        f*(y, c) = (delta * y - b) W^+ + c * (1_C W^+),   c in R

    has logits delta * y + c * 1_C (when D >= C and no singular value is
    clamped): the "ideal" features of label y. For a feature f the loss is
    the absolute cosine between f's offset from the line's anchor and the
    line's direction::

        a_i = f_i - (delta * y_i - b) W^+,    d = 1_C W^+
        L   = w * 1/N * sum_i |cos(a_i, d)|

    |cos| = 1 means f_i lies on the ideal line of y_i; the generator
    *minimises* L (w > 0), which moves the teacher's features of its
    samples off that line, to harder and more varied samples, while the
    class-prior CE keeps them in class. CPNet weights it by adv * beta
    (beta = 0.7-0.8 best in the paper's ablation; its code parses beta
    (``--dist``) but weights the term by adv alone).

    Args:
        classifier_weight (Tensor): W, (C, D).
        classifier_bias (Tensor, optional): b, (C, ). None: zero.
        smoothing (float): eps. Defaults to 0.1 (the reference's).
        singular_value_floor (float): Defaults to 0.1 (the reference's).
        loss_weight (float): Weight w. Defaults to 1.
    """

    def __init__(self,
                 classifier_weight: torch.Tensor,
                 classifier_bias: torch.Tensor | None = None,
                 smoothing: float = 0.1,
                 singular_value_floor: float = 0.1,
                 loss_weight: float = 1.0) -> None:
        super().__init__()
        weight = torch.as_tensor(classifier_weight).detach().float()
        if weight.dim() != 2 or weight.shape[0] < 2:
            raise ValueError('classifier_weight must be a (C, D) matrix with '
                             f'C >= 2 classes, got {tuple(weight.shape)}')
        if not 0 < smoothing < 1:
            raise ValueError(f'smoothing must be in (0, 1), got {smoothing}')
        if singular_value_floor <= 0:
            raise ValueError('singular_value_floor must be positive, got '
                             f'{singular_value_floor}')
        num_classes = weight.shape[0]
        bias = (torch.zeros(num_classes) if classifier_bias is None else
                torch.as_tensor(classifier_bias).detach().float())
        if bias.shape != (num_classes, ):
            raise ValueError(f'classifier_bias must have shape '
                             f'({num_classes}, ), got {tuple(bias.shape)}')
        self.num_classes = num_classes
        self.smoothing = smoothing
        self.singular_value_floor = singular_value_floor
        self.loss_weight = loss_weight
        self.logit_gap = math.log(
            (1 - smoothing) * (num_classes - 1) / smoothing)
        # derived from the teacher, so not stored in checkpoints
        self.register_buffer(
            'weight_pinv',
            clamped_pseudo_inverse(weight.T, singular_value_floor),
            persistent=False)
        self.register_buffer('bias', bias, persistent=False)

    def forward(self, features: torch.Tensor,
                targets: torch.Tensor) -> torch.Tensor:
        """
        Args:
            features (Tensor): The teacher's penultimate features f, (N, D).
            targets (Tensor): Labels (N, ) or one-hot / soft targets (N, C).
        """
        if targets.dim() == 1:
            targets = F.one_hot(targets.long(), self.num_classes)
        pinv = self.weight_pinv.to(features.dtype)
        anchor = (self.logit_gap * targets.to(features.dtype)
                  - self.bias.to(features.dtype)) @ pinv
        direction = pinv.sum(dim=0, keepdim=True)  # 1_C W^+
        cosine = F.cosine_similarity(features - anchor, direction, dim=1)
        return self.loss_weight * cosine.abs().mean()
