"""Periodic image grids of the synthetic training batches."""
import logging
from typing import Optional

import numpy as np
import torch
from mmengine.dist import is_main_process
from mmengine.hooks import Hook
from mmengine.logging import print_log
from mmengine.model import is_model_wrapper
from torchvision.utils import make_grid

from mmdfkd.registry import HOOKS


@HOOKS.register_module()
class SyntheticImageVisualizationHook(Hook):
    """Save a grid of the latest synthetic images every ``interval`` train
    iterations (and at the last one).

    Reads ``last_synthetic_batch`` of the (unwrapped) model, the detached
    images of :class:`~mmdfkd.models.algorithms.DataFreeDistillation`'s most
    recent generator or student step, and hands the grid to
    ``runner.visualizer.add_image('synthetic_images', grid, step)``: with a
    ``LocalVisBackend`` it becomes
    ``<work_dir>/<timestamp>/vis_data/vis_image/synthetic_images_<step>.png``,
    with a ``TensorboardVisBackend`` an image event.

    The images live in the networks' normalised input space (standardised by
    a BN layer, or of arbitrary range), so each one is min-max rescaled to
    [0, 1] on its own; a grid therefore shows structure, not absolute
    intensities. Grey images are shown as RGB.

    Example:
        >>> custom_hooks = [
        ...     dict(type='SyntheticImageVisualizationHook', interval=500)]

    Args:
        interval (int): Save every ``interval`` train iterations; the last
            iteration is always saved. Defaults to 1000.
        max_images (int): At most this many images (the first ones of the
            batch) go into a grid. Defaults to 64.
        nrow (int): Images per grid row. Defaults to 8.
        padding (int): Pixels between the images of the grid. Defaults to 2.
        name (str): Image identifier passed to the visualizer (file name
            prefix of the PNGs). Defaults to ``'synthetic_images'``.
    """

    priority = 'LOW'

    def __init__(self,
                 interval: int = 1000,
                 max_images: int = 64,
                 nrow: int = 8,
                 padding: int = 2,
                 name: str = 'synthetic_images') -> None:
        for key, value in (('interval', interval), ('max_images', max_images),
                           ('nrow', nrow)):
            if not isinstance(value, int) or value < 1:
                raise ValueError(
                    f'{key} must be a positive int, got {value!r}')
        if not isinstance(padding, int) or padding < 0:
            raise ValueError(
                f'padding must be a non-negative int, got {padding!r}')
        self.interval = interval
        self.max_images = max_images
        self.nrow = nrow
        self.padding = padding
        self.name = name
        self._warned_missing = False

    def after_train_iter(self,
                         runner,
                         batch_idx: int,
                         data_batch=None,
                         outputs: Optional[dict] = None) -> None:
        """Save a grid when this iteration is due.

        Args:
            runner: The runner (needs ``model``, ``iter``, ``max_iters`` and
                ``visualizer``).
            batch_idx (int): Index of the batch in the epoch (unused).
            data_batch: The batch of the iteration (unused).
            outputs (dict, optional): The losses of the step (unused).
        """
        if not (self.every_n_train_iters(runner, self.interval)
                or self.is_last_train_iter(runner)):
            return
        # the visualizer only writes on rank 0 anyway; returning early also
        # spares the other ranks building a grid for nothing
        if not is_main_process():
            return
        model = runner.model.module if is_model_wrapper(
            runner.model) else runner.model
        if not hasattr(model, 'last_synthetic_batch'):
            if not self._warned_missing:
                print_log(
                    f'{type(self).__name__}: {type(model).__name__} has no '
                    '`last_synthetic_batch`; no image grid is saved (use it '
                    'with a data-free distillation algorithm)',
                    logger='current',
                    level=logging.WARNING)
                self._warned_missing = True
            return
        images = model.last_synthetic_batch
        if images is None:  # no step has produced a batch yet
            return
        grid = self.make_grid_image(images)
        runner.visualizer.add_image(self.name, grid, step=runner.iter + 1)

    def make_grid_image(self, images: torch.Tensor) -> np.ndarray:
        """Turn a batch into an RGB ``uint8`` grid.

        Args:
            images (torch.Tensor): Images of shape ``(N, C, H, W)`` (or one
                image ``(C, H, W)``) with any value range.

        Returns:
            np.ndarray: The grid, shape ``(H', W', 3)``, dtype ``uint8``.
        """
        if images.dim() == 3:
            images = images[None]
        if images.dim() != 4 or images.shape[0] == 0:
            raise ValueError('last_synthetic_batch must be a non-empty '
                             f'(N, C, H, W) tensor, got shape '
                             f'{tuple(images.shape)}')
        # float32 on the CPU: the batch may be half precision (AMP) or on a
        # GPU, and neither is needed for a picture
        images = images[:self.max_images].detach().to('cpu', torch.float32)
        # a diverging generator may emit inf/nan; draw them instead of
        # letting them spoil the min-max range of the whole image
        images = torch.nan_to_num(images, nan=0.0, posinf=0.0, neginf=0.0)
        channels = images.shape[1]
        if channels == 1:
            images = images.expand(-1, 3, -1, -1)
        elif channels != 3:
            # no natural colour mapping: show the mean over channels as grey
            images = images.mean(dim=1, keepdim=True).expand(-1, 3, -1, -1)
        # per-image min-max rescaling: the images are in normalised space
        flat = images.flatten(1)
        low = flat.min(dim=1).values.view(-1, 1, 1, 1)
        high = flat.max(dim=1).values.view(-1, 1, 1, 1)
        images = (images - low) / (high - low).clamp(min=1e-8)
        grid = make_grid(
            images, nrow=self.nrow, padding=self.padding, pad_value=0.0)
        # the rounding of torchvision's save_image
        grid = grid.mul(255).add_(0.5).clamp_(0, 255).to(torch.uint8)
        return np.ascontiguousarray(grid.permute(1, 2, 0).numpy())
