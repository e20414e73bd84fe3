from typing import Optional, Tuple

import torch
from torch import nn

from mmdfkd.registry import MODELS
from . import functional as AF


@MODELS.register_module()
class CutMix(nn.Module):
    """CutMix (Yun et al., ICCV 2019) on a synthetic batch, as CPNet
    applies it to the augmented images of every synthesis step (kornia
    ``RandomCutMixV2(p=0.5)``).

    With probability ``prob`` per image i, a box of another image of the
    batch, j = perm(i) (a random permutation; j may be i), is pasted into
    image i. Box size: lambda ~ U(0, 1) (Beta(1, 1), kornia's default that
    CPNet keeps), side ratio r = sqrt(1 - lambda), box = floor(r*H) x
    floor(r*W) at a position drawn per image so that the box lies inside the
    image (kornia draws one position for the whole batch). The mixing ratio
    is the pasted area fraction rho_i = box area / (H * W) (0 for images
    left alone), and the class-prior loss becomes::

        L_CE^mix = mean_i [ (1 - rho_i) * CE(t_i, y_i)
                            + rho_i * CE(t_i, y_perm(i)) ]

    Gradients flow to both images of a pair.

    Args:
        prob (float): Probability of mixing each image. Defaults to 0.5.
    """

    def __init__(self, prob: float = 0.5) -> None:
        super().__init__()
        if not 0 <= prob <= 1:
            raise ValueError(f'prob must be in [0, 1], got {prob}')
        self.prob = prob

    def forward(
        self,
        images: torch.Tensor,
        targets: torch.Tensor,
        generator: Optional[torch.Generator] = None
    ) -> Tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Return (mixed images, partner targets y_perm, mixing ratios rho)."""
        n, _, h, w = images.shape
        device = images.device
        where = generator.device if generator is not None else device
        perm = torch.randperm(n, generator=generator, device=where).to(device)
        applied = AF.draw_uniform((n, ), 0, 1, generator, device) < self.prob
        lam = AF.draw_uniform((n, ), 0, 1, generator, device)
        side = torch.sqrt(1 - lam) * applied
        box_h = (side * h).floor().long()
        box_w = (side * w).floor().long()
        top = AF.draw_integers((n, ), h - box_h, generator, device)
        left = AF.draw_integers((n, ), w - box_w, generator, device)
        rows = torch.arange(h, device=device)[None, :]
        cols = torch.arange(w, device=device)[None, :]
        in_rows = (rows >= top[:, None]) & (rows < (top + box_h)[:, None])
        in_cols = (cols >= left[:, None]) & (cols < (left + box_w)[:, None])
        box = in_rows[:, None, :, None] & in_cols[:, None, None, :]
        mixed = torch.where(box, images[perm], images)
        ratio = (box_h * box_w).to(images.dtype) / (h * w)
        return mixed, targets[perm], ratio
