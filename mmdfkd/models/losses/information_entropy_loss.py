import torch
import torch.nn.functional as F
from torch import nn

from mmdfkd.registry import MODELS


@MODELS.register_module()
class InformationEntropyLoss(nn.Module):
    """Information-entropy loss of DAFL (Chen et al., ICCV 2019, Eq. 4):
    the batch-mean teacher prediction should be uniform, which balances the
    classes of the generated images::

        p_bar = 1/N * sum_i softmax(t_i / tau)
        L = w * (-H(p_bar)) = w * sum_c p_bar_c * ln p_bar_c

    Minimising L maximises the entropy; its minimum is -ln(C). The paper
    writes the natural logarithm, which we follow; MMRazor's implementation
    uses log10 (a factor 1/ln 10 on the weight). CuDFKD and AdaDFKD (Li et
    al.) soften the teacher with their KD temperature first (``tau``).

    Args:
        loss_weight (float): Weight w. Defaults to 1.
        tau (float): Temperature of the softmax. Defaults to 1.
    """

    def __init__(self, loss_weight: float = 1.0, tau: float = 1.0) -> None:
        super().__init__()
        if tau <= 0:
            raise ValueError(f'tau must be > 0, got {tau}')
        self.loss_weight = loss_weight
        self.tau = tau

    def forward(self, preds_T: torch.Tensor) -> torch.Tensor:
        mean_prob = F.softmax(preds_T / self.tau, dim=1).mean(dim=0)
        neg_entropy = (mean_prob * mean_prob.clamp_min(1e-12).log()).sum()
        return self.loss_weight * neg_entropy
