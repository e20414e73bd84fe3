"""Differentiable, per-sample image operations on (N, C, H, W) batches.

Every random parameter is drawn once per image. Images are expected in
[0, 1] for the colour operations (as torchvision and kornia assume).
"""
import math
from typing import Optional, Sequence

import torch
import torch.nn.functional as F


def draw_uniform(shape: Sequence[int], low: float, high: float,
                 generator: Optional[torch.Generator],
                 device: torch.device) -> torch.Tensor:
    """U(low, high) samples, drawn with ``generator`` (on its own device)
    if given, then moved to ``device``."""
    where = generator.device if generator is not None else device
    u = torch.rand(tuple(shape), generator=generator, device=where)
    return (low + (high - low) * u).to(device)


def draw_integers(shape: Sequence[int], high: torch.Tensor,
                  generator: Optional[torch.Generator],
                  device: torch.device) -> torch.Tensor:
    """Integers uniform in {0, ..., high} (inclusive, per element)."""
    u = draw_uniform(shape, 0.0, 1.0, generator, device)
    return torch.minimum((u * (high + 1)).floor().long(), high.long())


def random_crop_with_padding(images: torch.Tensor, offsets_y: torch.Tensor,
                             offsets_x: torch.Tensor, padding: int,
                             padding_mode: str = 'constant',
                             padding_value: float = 0.0) -> torch.Tensor:
    """Pad by ``padding`` on every side, then crop an H x W window of image
    i at (offsets_y[i], offsets_x[i]) of the padded image (offsets in
    [0, 2 * padding]). Gradients flow to the cropped pixels."""
    n, _, h, w = images.shape
    if padding_mode == 'constant':
        padded = F.pad(images, (padding, ) * 4, value=padding_value)
    else:
        padded = F.pad(images, (padding, ) * 4, mode=padding_mode)
    rows = offsets_y[:, None] + torch.arange(h, device=images.device)
    cols = offsets_x[:, None] + torch.arange(w, device=images.device)
    index = torch.arange(n, device=images.device)[:, None, None]
    # advanced indices around a slice: the result is (N, H, W, C)
    crops = padded[index, :, rows[:, :, None], cols[:, None, :]]
    return crops.permute(0, 3, 1, 2)


def horizontal_flip(images: torch.Tensor,
                    flip_mask: torch.Tensor) -> torch.Tensor:
    """Mirror the images whose ``flip_mask`` is True."""
    return torch.where(flip_mask[:, None, None, None], images.flip(-1),
                       images)


def rgb_to_grayscale(images: torch.Tensor) -> torch.Tensor:
    """ITU-R 601 luma (the weights torchvision uses), (N, 1, H, W)."""
    if images.shape[1] == 1:
        return images
    r, g, b = images.unbind(1)
    return (0.299 * r + 0.587 * g + 0.114 * b)[:, None]


def adjust_brightness(images: torch.Tensor,
                      factor: torch.Tensor) -> torch.Tensor:
    """x * b, clamped to [0, 1] (one factor per image)."""
    return (images * factor[:, None, None, None]).clamp(0, 1)


def adjust_contrast(images: torch.Tensor,
                    factor: torch.Tensor) -> torch.Tensor:
    """Blend with the image's mean grey level: c * x + (1 - c) * mean."""
    mean = rgb_to_grayscale(images).mean(dim=(1, 2, 3), keepdim=True)
    c = factor[:, None, None, None]
    return (c * images + (1 - c) * mean).clamp(0, 1)


def adjust_saturation(images: torch.Tensor,
                      factor: torch.Tensor) -> torch.Tensor:
    """Blend with the grey image: s * x + (1 - s) * grey (RGB only)."""
    if images.shape[1] != 3:
        return images
    s = factor[:, None, None, None]
    return (s * images + (1 - s) * rgb_to_grayscale(images)).clamp(0, 1)


def rgb_to_hsv(images: torch.Tensor, eps: float = 1e-8) -> torch.Tensor:
    """(N, 3, H, W) RGB in [0, 1] -> HSV with hue in [0, 1)."""
    value, channel = images.max(dim=1)
    chroma = value - images.min(dim=1)[0]
    saturation = chroma / (value + eps)
    safe_chroma = torch.where(chroma > 0, chroma, torch.ones_like(chroma))
    r, g, b = images.unbind(1)
    # hue sector (in units of 60 degrees) for each possible max channel
    sectors = torch.stack([(g - b) / safe_chroma,
                           (b - r) / safe_chroma + 2.0,
                           (r - g) / safe_chroma + 4.0], dim=1)
    hue = sectors.gather(1, channel[:, None])[:, 0]
    hue = torch.where(chroma > 0, hue, torch.zeros_like(hue))
    return torch.stack([(hue / 6.0) % 1.0, saturation, value], dim=1)


def hsv_to_rgb(images: torch.Tensor) -> torch.Tensor:
    """Inverse of :func:`rgb_to_hsv`."""
    hue, saturation, value = images.unbind(1)
    h6 = (hue % 1.0) * 6.0
    sector = h6.floor()
    f = h6 - sector
    p = value * (1 - saturation)
    q = value * (1 - f * saturation)
    t = value * (1 - (1 - f) * saturation)
    # (r, g, b) of the six hue sectors
    candidates = torch.stack([
        torch.stack(c, dim=1) for c in ((value, t, p), (q, value, p),
                                         (p, value, t), (p, q, value),
                                         (t, p, value), (value, p, q))
    ], dim=1)  # (N, 6, 3, H, W)
    index = sector.long().clamp(0, 5)[:, None, None].expand(
        -1, 1, 3, -1, -1)
    return candidates.gather(1, index)[:, 0]


def adjust_hue(images: torch.Tensor, shift: torch.Tensor) -> torch.Tensor:
    """Rotate the hue by ``shift`` (fraction of a turn, in [-0.5, 0.5];
    RGB only)."""
    if images.shape[1] != 3:
        return images
    hsv = rgb_to_hsv(images)
    hue = (hsv[:, 0] + shift[:, None, None]) % 1.0
    return hsv_to_rgb(torch.stack([hue, hsv[:, 1], hsv[:, 2]], dim=1))


def draw_resized_crop_boxes(n: int, height: int, width: int,
                            scale: Sequence[float], ratio: Sequence[float],
                            generator: Optional[torch.Generator],
                            device: torch.device,
                            attempts: int = 10) -> torch.Tensor:
    """Crop boxes of torchvision's ``RandomResizedCrop.get_params``, one
    per image, vectorised: up to ``attempts`` draws of an area fraction
    s ~ U(scale) and a log aspect ratio ~ U(log ratio) give w = round(
    sqrt(s H W r)), h = round(sqrt(s H W / r)); the first draw that fits in
    the image wins, offsets are uniform over the positions that fit. Images
    without a fitting draw get torchvision's fallback, the largest centred
    crop with the ratio clamped to ``ratio``.

    Returns:
        Tensor: (n, 4) long boxes (y0, x0, h, w).
    """
    area = float(height * width)
    s = draw_uniform((n, attempts), scale[0], scale[1], generator, device)
    log_r = draw_uniform((n, attempts), math.log(ratio[0]),
                         math.log(ratio[1]), generator, device)
    r = torch.exp(log_r)
    w = torch.round(torch.sqrt(area * s * r)).long()
    h = torch.round(torch.sqrt(area * s / r)).long()
    fits = (w > 0) & (w <= width) & (h > 0) & (h <= height)
    # index of the first fitting attempt (argmax returns the first max)
    first = fits.long().argmax(dim=1, keepdim=True)
    w = w.gather(1, first)[:, 0]
    h = h.gather(1, first)[:, 0]
    found = fits.any(dim=1)
    in_ratio = width / height
    if in_ratio < min(ratio):
        fallback_w, fallback_h = width, int(round(width / min(ratio)))
    elif in_ratio > max(ratio):
        fallback_w, fallback_h = int(round(height * max(ratio))), height
    else:
        fallback_w, fallback_h = width, height
    w = torch.where(found, w, torch.full_like(w, fallback_w))
    h = torch.where(found, h, torch.full_like(h, fallback_h))
    y0 = draw_integers((n, ), height - h, generator, device)
    x0 = draw_integers((n, ), width - w, generator, device)
    centred = ~found
    y0 = torch.where(centred, (height - h) // 2, y0)
    x0 = torch.where(centred, (width - w) // 2, x0)
    return torch.stack([y0, x0, h, w], dim=1)


def resized_crop(images: torch.Tensor, boxes: torch.Tensor) -> torch.Tensor:
    """Crop box (y0, x0, h, w) of image i and resize it bilinearly back to
    the input size, exactly as ``F.interpolate(crop, (H, W),
    mode='bilinear', align_corners=False)`` would, for every image at once
    (one sampling grid per image). Gradients flow to the input pixels."""
    n, _, height, width = images.shape
    boxes = boxes.to(images.dtype)

    def source_coords(start, length, size):
        # output pixel j samples start + (j + 0.5) * length / size - 0.5,
        # clamped to the crop's pixel centres (interpolate's edge rule),
        # in grid_sample's [-1, 1] coordinates of the whole image
        j = torch.arange(size, dtype=images.dtype, device=images.device)
        src = start[:, None] + (j + 0.5) * length[:, None] / size - 0.5
        src = torch.maximum(
            torch.minimum(src, (start + length - 1)[:, None]),
            start[:, None])
        return (2 * src + 1) / size - 1

    ys = source_coords(boxes[:, 0], boxes[:, 2], height)
    xs = source_coords(boxes[:, 1], boxes[:, 3], width)
    grid = torch.stack([xs[:, None, :].expand(n, height, width),
                        ys[:, :, None].expand(n, height, width)], dim=-1)
    return F.grid_sample(images, grid, mode='bilinear',
                         padding_mode='border', align_corners=False)
