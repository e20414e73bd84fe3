import torch
from torch import nn

from mmdfkd.registry import MODELS


@MODELS.register_module()
class L1Loss(nn.Module):
    """Mean absolute difference between student and teacher tensors::

        L = w * mean(|s - t|)

    DFAD (Fang et al., arXiv 1912.11006) distils with it on logits
    (w = 1) and trains its generator with w = -1 (maximise the discrepancy);
    TA-DFKD uses it as its student loss.

    Args:
        loss_weight (float): Weight w. Defaults to 1.
        teacher_detach (bool): Block gradients through the teacher.
            Defaults to False (the generator needs them).
    """

    def __init__(self, loss_weight: float = 1.0,
                 teacher_detach: bool = False) -> None:
        super().__init__()
        self.loss_weight = loss_weight
        self.teacher_detach = teacher_detach

    def forward(self, s_feature: torch.Tensor,
                t_feature: torch.Tensor) -> torch.Tensor:
        if self.teacher_detach:
            t_feature = t_feature.detach()
        return self.loss_weight * (s_feature - t_feature).abs().mean()
