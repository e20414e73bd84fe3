"""``SynthesisAugmentation`` and ``CutMix``: one draw per image, gradient
flow, identity when disabled, shape preservation, reproducibility, and the
colour operations against torchvision's."""
import pytest
import torch
import torchvision.transforms.functional as TF

from mmdfkd.models.augmentation import CutMix, SynthesisAugmentation
from mmdfkd.models.augmentation import functional as AF
from mmdfkd.registry import MODELS
from mmdfkd.utils import register_all_modules

register_all_modules()

JITTER = dict(brightness=0.1, contrast=0.1, saturation=0.1, hue=0.1,
              prob=0.4)


def _images(n=16, c=3, size=8, seed=0):
    return torch.rand(n, c, size, size,
                      generator=torch.Generator().manual_seed(seed))


def _gen(seed=0):
    return torch.Generator().manual_seed(seed)


@pytest.mark.parametrize('kwargs', [
    dict(),
    dict(crop_padding=2, padding_mode='reflect'),
    dict(crop_padding=4, padding_mode='replicate', flip=False),
    dict(color_jitter=JITTER),
    dict(color_jitter=JITTER, mean=[0.5, 0.4, 0.3], std=[0.2, 0.2, 0.2]),
])
@pytest.mark.parametrize('channels', [1, 3])
def test_shape_dtype_and_gradient_flow(kwargs, channels):
    if 'mean' in kwargs and channels == 1:
        kwargs = dict(kwargs, mean=[0.5], std=[0.2])
    aug = SynthesisAugmentation(**kwargs)
    x = _images(c=channels).requires_grad_(True)
    y = aug(x, _gen())
    assert y.shape == x.shape and y.dtype == x.dtype
    y.square().sum().backward()
    assert x.grad is not None
    # every image receives gradient
    assert (x.grad.abs().flatten(1).sum(1) > 0).all()


def test_identity_when_disabled():
    aug = SynthesisAugmentation(crop_padding=0, flip=False)
    x = _images()
    assert aug(x) is x
    jitter_off = SynthesisAugmentation(
        crop_padding=0, flip=False, color_jitter=dict(JITTER, prob=0.0))
    assert torch.equal(jitter_off(x, _gen()), x)


def _find_crop(output, image, padding):
    """The (dy, dx, flipped) of the crop of zero-padded ``image`` that
    equals ``output``, or None."""
    padded = torch.nn.functional.pad(image, (padding, ) * 4)
    size = image.shape[-1]
    for flipped in (False, True):
        for dy in range(2 * padding + 1):
            for dx in range(2 * padding + 1):
                crop = padded[:, dy:dy + size, dx:dx + size]
                if flipped:
                    crop = crop.flip(-1)
                if torch.equal(crop, output):
                    return dy, dx, flipped
    return None


def test_each_image_gets_its_own_crop_and_flip():
    """A batch of 32 copies of one image: crops and flips differ across the
    batch (one draw per image, not per batch), and each output is an exact
    padded crop (optionally mirrored) of the input."""
    image = _images(n=1, size=8)[0]
    x = image.expand(32, -1, -1, -1).contiguous()
    y = SynthesisAugmentation(crop_padding=2)(x, _gen(3))
    params = [_find_crop(out, image, 2) for out in y]
    assert None not in params
    assert len({(dy, dx) for dy, dx, _ in params}) > 5
    assert {f for _, _, f in params} == {False, True}
    assert all(0 <= p <= 4 for dy, dx, _ in params for p in (dy, dx))


def test_cropped_out_pixels_get_no_gradient():
    x = torch.ones(1, 1, 4, 4, requires_grad=True)
    # find a seed whose crop is shifted (not the centre)
    for seed in range(50):
        x.grad = None
        y = SynthesisAugmentation(crop_padding=2, flip=False)(x, _gen(seed))
        y.sum().backward()
        if (x.grad == 0).any():
            break
    assert set(x.grad.unique().tolist()) == {0.0, 1.0}
    # the kept pixels are those of the crop: their count is the number of
    # non-padding pixels of the output
    assert x.grad.sum() == y.detach().sum()


def test_jitter_factors_differ_per_image_and_respect_prob():
    x = _images(n=1)[0].expand(64, -1, -1, -1).contiguous()
    aug = SynthesisAugmentation(crop_padding=0, flip=False,
                                color_jitter=JITTER)
    y = aug(x, _gen(1))
    changed = (y - x).flatten(1).abs().amax(1) > 1e-6
    # prob 0.4: roughly 40 % of the images are jittered, each differently
    assert 10 <= int(changed.sum()) <= 45
    jittered = y[changed]
    assert len({tuple(v.flatten()[:5].tolist()) for v in jittered}) == len(
        jittered)


def test_reproducible_with_a_generator():
    aug = SynthesisAugmentation(color_jitter=JITTER)
    x = _images()
    assert torch.equal(aug(x, _gen(7)), aug(x, _gen(7)))
    assert not torch.equal(aug(x, _gen(7)), aug(x, _gen(8)))


def test_normalisation():
    x = _images(c=3)
    aug = SynthesisAugmentation(crop_padding=0, flip=False,
                                mean=[0.5, 0.4, 0.3], std=[0.5, 0.25, 0.1])
    mean = torch.tensor([0.5, 0.4, 0.3]).view(1, 3, 1, 1)
    std = torch.tensor([0.5, 0.25, 0.1]).view(1, 3, 1, 1)
    assert torch.allclose(aug(x), (x - mean) / std)
    assert aug.state_dict() == {}  # constants, not checkpointed


@pytest.mark.parametrize('kwargs, match', [
    (dict(crop_padding=-1), 'crop_padding'),
    (dict(padding_mode='circular'), 'padding_mode'),
    (dict(mean=[0.5]), 'mean and std'),
    (dict(color_jitter=dict(gamma=0.1)), 'gamma'),
    (dict(color_jitter=dict(hue=0.7)), 'hue'),
    (dict(color_jitter=dict(prob=2)), 'prob'),
])
def test_invalid_args(kwargs, match):
    with pytest.raises((ValueError, KeyError), match=match):
        SynthesisAugmentation(**kwargs)


# --------------------------------------------------------------------------
# colour operations against torchvision
# --------------------------------------------------------------------------
@pytest.mark.parametrize('op, tv_op, factors', [
    (AF.adjust_brightness, TF.adjust_brightness, [0.9, 1.1]),
    (AF.adjust_contrast, TF.adjust_contrast, [0.9, 1.1]),
    (AF.adjust_saturation, TF.adjust_saturation, [0.9, 1.1]),
    (AF.adjust_hue, TF.adjust_hue, [-0.1, 0.07]),
])
def test_colour_ops_match_torchvision(op, tv_op, factors):
    x = _images(n=2, size=6)
    ours = op(x, torch.tensor(factors))
    for i, factor in enumerate(factors):
        assert torch.allclose(ours[i], tv_op(x[i], factor), atol=1e-5)


def test_hsv_round_trip_and_grayscale_passthrough():
    x = _images(n=4)
    assert torch.allclose(AF.hsv_to_rgb(AF.rgb_to_hsv(x)), x, atol=1e-5)
    grey = _images(n=4, c=1)
    assert torch.equal(AF.adjust_hue(grey, torch.full((4, ), 0.1)), grey)
    assert torch.equal(
        AF.adjust_saturation(grey, torch.full((4, ), 0.5)), grey)


# --------------------------------------------------------------------------
# CutMix
# --------------------------------------------------------------------------
def _constant_images(n=16, size=8):
    """Image i is the constant i + 1, so pasted pixels are identifiable."""
    return torch.arange(1, n + 1, dtype=torch.float32).view(
        n, 1, 1, 1).expand(n, 3, size, size).contiguous()


def test_cutmix_pastes_a_box_of_the_partner_with_the_right_ratio():
    x = _constant_images()
    targets = torch.arange(16)
    mixed, partner_targets, ratio = CutMix(prob=1.0)(x, targets, _gen(0))
    assert mixed.shape == x.shape
    for i in range(16):
        partner = int(partner_targets[i])
        from_partner = (mixed[i, 0] == partner + 1)
        own = (mixed[i, 0] == i + 1)
        assert bool((from_partner | own).all())
        if partner != i:
            # the pasted area is a rectangle of the stated fraction
            assert from_partner.float().mean() == pytest.approx(
                float(ratio[i]))
            rows = from_partner.any(1).nonzero()
            cols = from_partner.any(0).nonzero()
            if len(rows):
                box = from_partner[rows.min():rows.max() + 1,
                                   cols.min():cols.max() + 1]
                assert bool(box.all())
    assert sorted(partner_targets.tolist()) == list(range(16))
    # box sizes are drawn per image
    assert len(set(ratio.tolist())) > 3


def test_cutmix_probability_and_gradient_to_both_images():
    x = _constant_images().requires_grad_(True)
    mixed, partner_targets, ratio = CutMix(prob=0.0)(x, torch.arange(16),
                                                     _gen(0))
    assert torch.equal(mixed, x) and torch.equal(ratio, torch.zeros(16))

    mixed, partner_targets, ratio = CutMix(prob=1.0)(x, torch.arange(16),
                                                     _gen(1))
    mixed.sum().backward()
    # every pixel of the output comes from exactly one input pixel
    assert x.grad.sum() == mixed.numel()
    pasted = [i for i in range(16)
              if ratio[i] > 0 and int(partner_targets[i]) != i]
    assert pasted
    # pixels covered by a box get no gradient; the pixels that lent it get
    # gradient from two outputs
    assert (x.grad == 0).any() and (x.grad >= 2).any()


def _box_corners(mixed, partner_targets):
    """(top, left, height, width) of every pasted box, from constant images."""
    boxes = {}
    for i in range(len(mixed)):
        partner = int(partner_targets[i])
        pasted = mixed[i, 0] == partner + 1
        if partner == i or not bool(pasted.any()):
            continue
        rows = pasted.any(1).nonzero().flatten()
        cols = pasted.any(0).nonzero().flatten()
        boxes[i] = (int(rows.min()), int(cols.min()), len(rows), len(cols))
    return boxes


def _shared_fraction_exists(boxes, size):
    """Whether one u in [0, 1) gives top = floor(u (size - h - 1)) for every
    box (and one v the lefts): kornia's one-position-per-batch rule."""
    for axis in (0, 1):
        low, high = 0.0, 1.0
        for box in boxes.values():
            start, length = box[axis], box[axis + 2]
            free = size - length - 1
            if free <= 0:
                if start != 0:
                    return False
                continue
            low = max(low, start / free)
            high = min(high, (start + 1) / free)
        if low >= high:
            return False
    return True


@pytest.mark.parametrize('seed', [0, 1, 2])
def test_cutmix_box_position_per_batch_is_kornias_rule(seed):
    """``box_position='per_batch'`` (the CPNet code's kornia CutMix): every
    box at the same relative place; the default draws one per image."""
    size = 16
    x = _constant_images(n=16, size=size)
    targets = torch.arange(16)
    mixed, partners, ratio = CutMix(
        prob=1.0, box_position='per_batch')(x, targets, _gen(seed))
    boxes = _box_corners(mixed, partners)
    assert len(boxes) >= 8
    assert _shared_fraction_exists(boxes, size)
    # kornia keeps the last row and column out of every box
    for top, left, h, w in boxes.values():
        assert top + h <= size - 1 or h == size
        assert left + w <= size - 1 or w == size
    # the ratio is still the pasted area fraction
    for i, (_, _, h, w) in boxes.items():
        assert float(ratio[i]) == pytest.approx(h * w / size**2)

    mixed, partners, _ = CutMix(prob=1.0)(x, targets, _gen(seed))
    assert not _shared_fraction_exists(_box_corners(mixed, partners), size)


def test_cutmix_is_buildable_and_checks_prob():
    assert isinstance(MODELS.build(dict(type='CutMix', prob=0.5)), CutMix)
    assert isinstance(
        MODELS.build(dict(type='SynthesisAugmentation')),
        SynthesisAugmentation)
    with pytest.raises(ValueError, match='prob'):
        CutMix(prob=1.5)
    with pytest.raises(ValueError, match='box_position'):
        CutMix(box_position='per_pixel')
