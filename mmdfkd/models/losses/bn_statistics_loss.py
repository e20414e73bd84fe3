from typing import Sequence

import torch
from torch import nn

from mmdfkd.registry import MODELS


@MODELS.register_module()
class BNStatisticsLoss(nn.Module):
    """Feature-distribution regulariser of DeepInversion (Yin et al., CVPR
    2020, Eq. 4): the batch statistics of every teacher BatchNorm input
    should match the statistics the teacher stored from its training data::

        L = w * sum_l ( ||mu_l(x) - running_mean_l||_2
                      + ||sigma^2_l(x) - running_var_l||_2 )

    with plain (not squared) L2 norms, as in the DeepInversion, CMI and Fast
    references. Fed by :class:`BNStatisticsRecorder`.

    Args:
        loss_weight (float): Weight w. Defaults to 1.
    """

    def __init__(self, loss_weight: float = 1.0) -> None:
        super().__init__()
        self.loss_weight = loss_weight

    def forward(self, bn_stats: Sequence) -> torch.Tensor:
        if not bn_stats:
            raise ValueError('BNStatisticsLoss got no BatchNorm statistics; '
                             'did the teacher run inside the recorder?')
        loss = sum(
            torch.linalg.vector_norm(s.batch_mean - s.running_mean) +
            torch.linalg.vector_norm(s.batch_var - s.running_var)
            for s in bn_stats)
        return self.loss_weight * loss
