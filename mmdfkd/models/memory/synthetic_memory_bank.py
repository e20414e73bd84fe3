from typing import Sequence, Tuple

import torch
from torch import nn

from mmdfkd.registry import MODELS


@MODELS.register_module()
class SyntheticMemoryBank(nn.Module):
    """A bounded first-in-first-out pool of synthetic images and labels kept
    in (device) memory, from which the student samples its batches.

    The references (DeepInversion, CMI, Fast, NAYER) write every image to a
    PNG file and re-scan the folder every epoch; a tensor ring buffer avoids
    the disk, the uint8 quantisation and the stale files of earlier runs.
    The pool is made of buffers, so it is saved in checkpoints and a resumed
    run samples from the same pool.

    Args:
        capacity (int): Maximum number of images kept; the oldest are
            overwritten first.
        image_shape (Sequence[int]): (C, H, W) of the stored images.
    """

    def __init__(self, capacity: int, image_shape: Sequence[int]) -> None:
        super().__init__()
        if capacity <= 0:
            raise ValueError(f'capacity must be positive, got {capacity}')
        self.capacity = capacity
        self.register_buffer('images', torch.zeros(capacity, *image_shape))
        self.register_buffer('targets',
                             torch.zeros(capacity, dtype=torch.long))
        self.register_buffer('num_stored', torch.zeros((), dtype=torch.long))
        self.register_buffer('write_pos', torch.zeros((), dtype=torch.long))

    def __len__(self) -> int:
        return int(self.num_stored)

    @torch.no_grad()
    def add(self, images: torch.Tensor, targets: torch.Tensor) -> None:
        """Append a batch, overwriting the oldest entries when full."""
        n = len(images)
        if n > self.capacity:
            images, targets, n = images[-self.capacity:], targets[
                -self.capacity:], self.capacity
        pos = int(self.write_pos)
        idx = (torch.arange(n, device=self.images.device) +
               pos) % self.capacity
        self.images[idx] = images.detach().to(self.images.dtype)
        self.targets[idx] = targets.detach().long()
        self.write_pos.fill_((pos + n) % self.capacity)
        self.num_stored.fill_(min(int(self.num_stored) + n, self.capacity))

    def sample(self, batch_size: int) -> Tuple[torch.Tensor, torch.Tensor]:
        """Draw ``batch_size`` entries uniformly with replacement."""
        if len(self) == 0:
            raise RuntimeError(
                'the synthetic memory bank is empty: the student cannot '
                'sample before any synthesis step has added images (check '
                'the phase order / warm-up settings)')
        idx = torch.randint(
            len(self), (batch_size, ), device=self.images.device)
        return self.images[idx], self.targets[idx]
