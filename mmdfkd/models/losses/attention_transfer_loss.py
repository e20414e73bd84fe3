import torch
import torch.nn.functional as F
from torch import nn

from mmdfkd.registry import MODELS


@MODELS.register_module()
class ATLoss(nn.Module):
    """Attention transfer (Zagoruyko & Komodakis, ICLR 2017), the feature
    term of ZSKT (Micaelli & Storkey, NeurIPS 2019, Eq. 3, beta = 250)::

        a(f) = normalize_L2( mean_c f_c^2 ) (flattened spatial map)
        L = w * mean_{i,j} ( a(s)_ij - a(t)_ij )^2

    Args:
        loss_weight (float): Weight w (ZSKT's beta). Defaults to 1.
    """

    def __init__(self, loss_weight: float = 1.0) -> None:
        super().__init__()
        self.loss_weight = loss_weight

    @staticmethod
    def attention_map(feature: torch.Tensor) -> torch.Tensor:
        return F.normalize(feature.pow(2).mean(1).flatten(1), dim=1)

    def forward(self, s_feature: torch.Tensor,
                t_feature: torch.Tensor) -> torch.Tensor:
        if s_feature.shape[2:] != t_feature.shape[2:]:
            raise ValueError(
                'ATLoss needs student and teacher maps of equal spatial size, '
                f'got {tuple(s_feature.shape)} and {tuple(t_feature.shape)}')
        diff = self.attention_map(s_feature) - self.attention_map(
            t_feature.detach())
        return self.loss_weight * diff.pow(2).mean()
