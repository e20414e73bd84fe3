from typing import Optional, Sequence

import torch
from mmengine.model import BaseModule
from torch import nn

from mmdfkd.registry import MODELS


@MODELS.register_module()
class LearnableImages(BaseModule):
    """A batch of images whose pixels are the parameters, for model
    inversion without a generator (DeepInversion, Yin et al., CVPR 2020).

    Calling it returns the current pixels; :meth:`reset` re-draws them from
    N(0, 1) (images live in the teachers' normalised input space). Each
    process optimises its own images, so under DDP this module must not be
    wrapped: ``rank_local = True`` tells mmdfkd's model wrapper to skip it.

    Args:
        batch_size (int): Number of images per synthesis batch (per rank).
        image_shape (Sequence[int]): (C, H, W).
        value_range (tuple, optional): (low, high) that :meth:`project`
            clamps the pixels to after each update (DeepInversion clips to
            the valid normalised pixel range). None: no clamping.
    """

    rank_local = True

    def __init__(self,
                 batch_size: int,
                 image_shape: Sequence[int],
                 value_range: Optional[Sequence[float]] = None,
                 init_cfg: Optional[dict] = None) -> None:
        super().__init__(init_cfg)
        if batch_size <= 0:
            raise ValueError(f'batch_size must be positive, got {batch_size}')
        self.batch_size = batch_size
        self.image_shape = tuple(image_shape)
        self.value_range = tuple(value_range) if value_range else None
        self.images = nn.Parameter(torch.randn(batch_size, *image_shape))

    @torch.no_grad()
    def reset(self) -> None:
        self.images.normal_()

    @torch.no_grad()
    def project(self) -> None:
        if self.value_range is not None:
            self.images.clamp_(*self.value_range)

    def forward(self,
                latents: Optional[torch.Tensor] = None,
                targets: Optional[torch.Tensor] = None) -> torch.Tensor:
        n = len(latents) if latents is not None else self.batch_size
        if n != self.batch_size:
            raise ValueError(
                f'LearnableImages holds {self.batch_size} images but the '
                f'synthetic batch has {n} samples; set the generator '
                'batch_size to the train_dataloader batch_size')
        return self.images
