from typing import Optional

import torch
import torch.nn.functional as F
from torch import nn

from mmdfkd.registry import MODELS


@MODELS.register_module()
class InstanceContrastiveLoss(nn.Module):
    """Instance-discrimination loss of CMI (Fang et al., "Contrastive Model
    Inversion for Data-Free Knowledge Distillation", IJCAI 2021, arXiv
    2105.08584): every synthetic instance must be told apart from all others
    by its two views, which pushes the generator towards diverse images.

    For N instances with anchor projections a_i (local views) and key
    projections k_j (global views, detached: gradients flow through the
    anchors only)::

        l_ij = cos(a_i, k_j) / tau
        L_i  = -log( exp(l_ii) / sum_j exp(l_ij) )     (CE, label i)
        L    = w * mean_i L_i

    If ``num_current`` = B < N (the first B rows are the current batch, the
    rest negatives from the feature bank), the two groups are averaged
    separately and added, as in the reference code::

        L = w * ( mean_{i < B} L_i + mean_{i >= B} L_i )

    so that the current batch keeps weight 1 however many negatives there
    are (a plain mean would scale its gradient by B / N; the paper writes
    the loss as one expectation over the batch and the bank).

    Args:
        temperature (float): tau (CMI's ``cr_T``). Defaults to 0.1.
        loss_weight (float): w (CMI's ``cr``). Defaults to 1.
    """

    def __init__(self,
                 temperature: float = 0.1,
                 loss_weight: float = 1.0) -> None:
        super().__init__()
        if temperature <= 0:
            raise ValueError(f'temperature must be positive, got '
                             f'{temperature}')
        self.temperature = temperature
        self.loss_weight = loss_weight

    def forward(self,
                anchors: torch.Tensor,
                keys: torch.Tensor,
                num_current: Optional[int] = None) -> torch.Tensor:
        """
        Args:
            anchors (Tensor): (N, D) projections of the local views.
            keys (Tensor): (N, D) projections of the global views, row i
                the positive of anchor i.
            num_current (int, optional): Rows of the current batch (the
                first ones); None or N: all rows are averaged together.
        """
        if anchors.shape != keys.shape or anchors.dim() != 2:
            raise ValueError('anchors and keys must both be (N, D), got '
                             f'{tuple(anchors.shape)} and '
                             f'{tuple(keys.shape)}')
        n = len(anchors)
        if num_current is not None and not 0 < num_current <= n:
            raise ValueError(f'num_current must be in [1, {n}], got '
                             f'{num_current}')
        anchors = F.normalize(anchors, dim=1)
        keys = F.normalize(keys.detach(), dim=1)
        logits = anchors @ keys.t() / self.temperature
        labels = torch.arange(n, device=logits.device)
        per_instance = F.cross_entropy(logits, labels, reduction='none')
        if num_current is None or num_current == n:
            loss = per_instance.mean()
        else:
            loss = (per_instance[:num_current].mean() +
                    per_instance[num_current:].mean())
        return self.loss_weight * loss
