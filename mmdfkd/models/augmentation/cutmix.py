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
    floor(r*W). Its position (``box_position``):

    * ``'per_image'`` (default): the top-left corner is uniform over every
      position that keeps the box inside image i, drawn per image.
    * ``'per_batch'``: kornia's rule, which CPNet's code runs: one pair of
      fractions (u, v) ~ U(0, 1)^2 for the whole batch, corner
      (floor(u (H - h_i - 1)), floor(v (W - w_i - 1))) clamped at 0, so
      every box sits at the same relative place (and never touches the last
      row or column).

    The mixing ratio
    is the pasted area fraction rho_i = box area / (H * W) (0 for images
    left alone), and the class-prior loss becomes::

        L_CE^mix = mean_i [ (1 - rho_i) * CE(t_i, y_i)
                            + rho_i * CE(t_i, y_perm(i)) ]

    Gradients flow to both images of a pair.

    Args:
        prob (float): Probability of mixing each image. Defaults to 0.5.
        box_position (str): ``'per_image'`` or ``'per_batch'`` (kornia's
            ``RandomCutMixV2``, as in the CPNet code). Defaults to
            'per_image'.
    """

    BOX_POSITIONS = ('per_image', 'per_batch')

    def __init__(self,
                 prob: float = 0.5,
                 box_position: str = 'per_image') -> None:
        super().__init__()
        if not 0 <= prob <= 1:
            raise ValueError(f'prob must be in [0, 1], got {prob}')
        if box_position not in self.BOX_POSITIONS:
            raise ValueError(f'box_position must be one of '
                             f'{self.BOX_POSITIONS}, got {box_position!r}')
        self.prob = prob
        self.box_position = box_position

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
        if self.box_position == 'per_image':
            top = AF.draw_integers((n, ), h - box_h, generator, device)
            left = AF.draw_integers((n, ), w - box_w, generator, device)
        else:
            u, v = AF.draw_uniform((2, ), 0, 1, generator, device)
            top = (u * (h - box_h - 1)).floor().long().clamp(min=0)
            left = (v * (w - box_w - 1)).floor().long().clamp(min=0)
        rows = torch.arange(h, device=device)[None, :]
        cols = torch.arange(w, device=device)[None, :]
        in_rows = (rows >= top[:, None]) & (rows < (top + box_h)[:, None])
        in_cols = (cols >= left[:, None]) & (cols < (left + box_w)[:, None])
        box = in_rows[:, None, :, None] & in_cols[:, None, None, :]
        mixed = torch.where(box, images[perm], images)
        ratio = (box_h * box_w).to(images.dtype) / (h * w)
        return mixed, targets[perm], ratio
