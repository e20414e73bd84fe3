"""Image priors of DeepInversion (Yin et al., CVPR 2020, Eq. 3), also used
by TA-DFKD's generator loss."""
import torch
from torch import nn

from mmdfkd.registry import MODELS


@MODELS.register_module()
class TotalVariationLoss(nn.Module):
    """Total variation over the four neighbour directions (right, down and
    both diagonals), which favours piecewise-smooth images::

        L = w * sum_{d in 4 directions} ||x - shift_d(x)||_p

    ``p = 2`` is DeepInversion's ``loss_var_l2`` (norm of the whole difference
    tensor); ``p = 1`` uses the mean absolute difference (its ``loss_var_l1``).

    Args:
        norm (str): ``'l2'`` or ``'l1'``. Defaults to 'l2'.
        loss_weight (float): Weight w. Defaults to 1.
    """

    def __init__(self, norm: str = 'l2', loss_weight: float = 1.0) -> None:
        super().__init__()
        if norm not in ('l1', 'l2'):
            raise ValueError(f"norm must be 'l1' or 'l2', got {norm!r}")
        self.norm = norm
        self.loss_weight = loss_weight

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        diffs = (images[..., :, :-1] - images[..., :, 1:],
                 images[..., :-1, :] - images[..., 1:, :],
                 images[..., 1:, :-1] - images[..., :-1, 1:],
                 images[..., :-1, :-1] - images[..., 1:, 1:])
        if self.norm == 'l2':
            loss = sum(torch.linalg.vector_norm(d) for d in diffs)
        else:
            loss = sum(d.abs().mean() for d in diffs)
        return self.loss_weight * loss


@MODELS.register_module()
class ImageL2NormLoss(nn.Module):
    """L2 norm of the synthetic images, which keeps pixel values bounded::

        reduction='mean':  L = w * 1/N * sum_i ||x_i||_2    (per image)
        reduction='batch': L = w * ||X||_2 = w * sqrt(sum_i ||x_i||_2^2)

    ``'batch'`` is ``torch.norm`` of the whole batch tensor, as TA-DFKD's
    code computes it; for N images of equal norm it equals ``'mean'``
    times sqrt(N).

    Args:
        reduction (str): ``'mean'`` or ``'batch'``. Defaults to 'mean'.
        loss_weight (float): Weight w. Defaults to 1.
    """

    def __init__(self,
                 reduction: str = 'mean',
                 loss_weight: float = 1.0) -> None:
        super().__init__()
        if reduction not in ('mean', 'batch'):
            raise ValueError(
                f"reduction must be 'mean' or 'batch', got {reduction!r}")
        self.reduction = reduction
        self.loss_weight = loss_weight

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        if self.reduction == 'batch':
            return self.loss_weight * torch.linalg.vector_norm(images)
        return self.loss_weight * torch.linalg.vector_norm(
            images.flatten(1), dim=1).mean()
