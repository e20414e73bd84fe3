import torch
import torch.nn.functional as F
from torch import nn

from mmdfkd.registry import MODELS


@MODELS.register_module()
class OnehotLikeLoss(nn.Module):
    """One-hot loss of DAFL (Chen et al., ICCV 2019, Eq. 2): the teacher's
    output on a generated image should be confident, i.e. close to the
    one-hot vector of its own arg-max::

        L = w * 1/N * sum_i CE(t_i, argmax_c t_ic)

    Args:
        loss_weight (float): Weight w. Defaults to 1.
    """

    def __init__(self, loss_weight: float = 1.0) -> None:
        super().__init__()
        self.loss_weight = loss_weight

    def forward(self, preds_T: torch.Tensor) -> torch.Tensor:
        pseudo_labels = preds_T.argmax(dim=1).detach()
        return self.loss_weight * F.cross_entropy(preds_T, pseudo_labels)
