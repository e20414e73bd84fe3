from typing import Optional, Sequence

import torch
from torch import nn

from mmdfkd.registry import MODELS
from . import functional as AF

_JITTER_KEYS = ('brightness', 'contrast', 'saturation', 'hue', 'prob')


@MODELS.register_module()
class SynthesisAugmentation(nn.Module):
    """Differentiable per-sample augmentation of synthetic images, applied
    between the generator and the networks (CMI, Fast, NAYER, CPNet: kornia
    ``RandomCrop(size, padding=4) -> RandomHorizontalFlip ->
    [ColorJitter(0.1, 0.1, 0.1, 0.1, p=0.4)] -> Normalize``), written in
    torch so that no extra dependency is needed.

    Every random parameter is drawn per image, not per batch (TA-DFKD's
    torchvision transforms on a whole 4-D batch use one crop and one flip
    for all images), and gradients flow back to the input pixels. In order:

    1. Random crop with padding: pad by ``crop_padding`` pixels, crop the
       original size at an offset ~ U{0..2p}^2 per image.
       Or/and a random resized crop (``resized_crop``, kornia's and
       torchvision's ``RandomResizedCrop``): a box of area fraction
       s ~ U(scale) and aspect ratio r with log r ~ U(log ratio) per image,
       resized bilinearly back to the input size (CMI's "local view":
       scale (0.25, 1)).
    2. Horizontal flip with probability 1/2 per image (``flip``).
    3. Colour jitter (``color_jitter``), applied to each image with
       probability ``prob``, with factors drawn per image as in torchvision:
       brightness b ~ U[max(0, 1-B), 1+B] (x * b), contrast c ~ U[max(0,
       1-C), 1+C] (blend with the mean grey level), saturation s (blend with
       the grey image), hue h ~ U[-H, H] (rotation in HSV); results clamped
       to [0, 1]. Saturation and hue leave 1-channel images unchanged. The
       order is fixed (torchvision/kornia shuffle it).
    4. Normalisation ``(x - mean) / std`` if ``mean`` and ``std`` are set.

    With ``crop_padding=0``, ``flip=False`` and no jitter or normalisation
    the input is returned unchanged. Use :class:`CutMix` on the result for
    CPNet's CutMix.

    Args:
        crop_padding (int): Padding p of the random crop; 0 disables it.
            Defaults to 4.
        padding_mode (str): ``'constant'``, ``'reflect'`` or
            ``'replicate'``. Defaults to 'constant' (kornia's).
        padding_value (float): Fill value of constant padding. Defaults to 0.
        flip (bool): Random horizontal flips. Defaults to True.
        resized_crop (dict, optional): ``dict(scale=(lo, hi), ratio=(lo,
            hi))`` of a random resized crop applied after the padded crop
            (set ``crop_padding=0`` for the crop alone); missing keys take
            torchvision's defaults, scale (0.08, 1) and ratio (3/4, 4/3).
            Defaults to None (no resized crop).
        color_jitter (dict, optional): ``dict(brightness=B, contrast=C,
            saturation=S, hue=H, prob=p)`` (missing keys: 0, prob 1).
            Defaults to None (no jitter). CPNet: 0.1 each, prob 0.4.
        mean (Sequence[float], optional): Per-channel mean of the
            normalisation, in the images' units.
        std (Sequence[float], optional): Per-channel std.
    """

    def __init__(self,
                 crop_padding: int = 4,
                 padding_mode: str = 'constant',
                 padding_value: float = 0.0,
                 flip: bool = True,
                 resized_crop: Optional[dict] = None,
                 color_jitter: Optional[dict] = None,
                 mean: Optional[Sequence[float]] = None,
                 std: Optional[Sequence[float]] = None) -> None:
        super().__init__()
        if crop_padding < 0:
            raise ValueError(
                f'crop_padding must be >= 0, got {crop_padding}')
        if padding_mode not in ('constant', 'reflect', 'replicate'):
            raise ValueError(f'unknown padding_mode {padding_mode!r}')
        if (mean is None) != (std is None):
            raise ValueError('set both mean and std, or neither')
        self.crop_padding = crop_padding
        self.padding_mode = padding_mode
        self.padding_value = padding_value
        self.flip = flip
        self.resized_crop = self._check_resized_crop(resized_crop)
        self.color_jitter = self._check_jitter(color_jitter)
        if mean is not None:
            self.register_buffer(
                'mean', torch.tensor(mean, dtype=torch.float32).view(
                    1, -1, 1, 1), persistent=False)
            self.register_buffer(
                'std', torch.tensor(std, dtype=torch.float32).view(
                    1, -1, 1, 1), persistent=False)
        else:
            self.mean = self.std = None

    @staticmethod
    def _check_resized_crop(cfg: Optional[dict]) -> Optional[dict]:
        if cfg is None:
            return None
        unknown = set(cfg) - {'scale', 'ratio'}
        if unknown:
            raise KeyError(f'unknown resized_crop keys {sorted(unknown)}; '
                           "allowed: ('scale', 'ratio')")
        cfg = {'scale': (0.08, 1.0), 'ratio': (3 / 4, 4 / 3), **cfg}
        (s_lo, s_hi), (r_lo, r_hi) = cfg['scale'], cfg['ratio']
        if not (0 < s_lo <= s_hi <= 1 and 0 < r_lo <= r_hi):
            raise ValueError('resized_crop needs 0 < scale[0] <= scale[1] <= '
                             '1 and 0 < ratio[0] <= ratio[1], got '
                             f"scale {cfg['scale']}, ratio {cfg['ratio']}")
        return cfg

    @staticmethod
    def _check_jitter(cfg: Optional[dict]) -> Optional[dict]:
        if cfg is None:
            return None
        unknown = set(cfg) - set(_JITTER_KEYS)
        if unknown:
            raise KeyError(f'unknown color_jitter keys {sorted(unknown)}; '
                           f'allowed: {_JITTER_KEYS}')
        cfg = {**dict.fromkeys(_JITTER_KEYS[:4], 0.0), 'prob': 1.0, **cfg}
        if any(cfg[k] < 0 for k in _JITTER_KEYS[:3]) or not (
                0 <= cfg['hue'] <= 0.5) or not 0 <= cfg['prob'] <= 1:
            raise ValueError('color_jitter needs brightness, contrast, '
                             'saturation >= 0, hue in [0, 0.5] and prob in '
                             f'[0, 1], got {cfg}')
        return cfg

    def forward(self,
                images: torch.Tensor,
                generator: Optional[torch.Generator] = None) -> torch.Tensor:
        """Augment a batch (N, C, H, W); ``generator`` makes the draws
        reproducible (default: the global RNG)."""
        n, device = len(images), images.device
        x = images
        if self.crop_padding:
            high = torch.tensor(2 * self.crop_padding, device=device)
            offsets = [AF.draw_integers((n, ), high, generator, device)
                       for _ in range(2)]
            x = AF.random_crop_with_padding(x, *offsets, self.crop_padding,
                                            self.padding_mode,
                                            self.padding_value)
        if self.resized_crop is not None:
            boxes = AF.draw_resized_crop_boxes(
                n, x.shape[2], x.shape[3], self.resized_crop['scale'],
                self.resized_crop['ratio'], generator, device)
            x = AF.resized_crop(x, boxes)
        if self.flip:
            flips = AF.draw_uniform((n, ), 0, 1, generator, device) < 0.5
            x = AF.horizontal_flip(x, flips)
        if self.color_jitter is not None:
            x = self._jitter(x, generator)
        if self.mean is not None:
            x = (x - self.mean.to(x.dtype)) / self.std.to(x.dtype)
        return x

    def _jitter(self, x: torch.Tensor,
                generator: Optional[torch.Generator]) -> torch.Tensor:
        cfg, n, device = self.color_jitter, len(x), x.device

        def factor(spread):
            return AF.draw_uniform((n, ), max(0.0, 1 - spread), 1 + spread,
                                   generator, device)

        applied = AF.draw_uniform((n, ), 0, 1, generator, device) < cfg['prob']
        jittered = x
        if cfg['brightness']:
            jittered = AF.adjust_brightness(jittered,
                                            factor(cfg['brightness']))
        if cfg['contrast']:
            jittered = AF.adjust_contrast(jittered, factor(cfg['contrast']))
        if cfg['saturation']:
            jittered = AF.adjust_saturation(jittered,
                                            factor(cfg['saturation']))
        if cfg['hue']:
            shift = AF.draw_uniform((n, ), -cfg['hue'], cfg['hue'],
                                    generator, device)
            jittered = AF.adjust_hue(jittered, shift)
        return torch.where(applied[:, None, None, None], jittered, x)
