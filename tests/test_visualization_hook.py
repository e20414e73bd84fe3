"""Tests of SyntheticImageVisualizationHook with a real LocalVisBackend."""
import glob
import os.path as osp
import types
import uuid

import numpy as np
import pytest
import torch
from mmengine.visualization import Visualizer
from PIL import Image

from mmdfkd.engine.hooks.synthetic_image_visualization_hook import \
    SyntheticImageVisualizationHook


def _runner(tmp_path, batch, iteration, max_iters=100, wrapped=False):
    """A stand-in runner holding only what the hook reads."""
    # instance names are global in mmengine: a unique one per test
    visualizer = Visualizer.get_instance(
        name=f'vis_{uuid.uuid4().hex}',
        vis_backends=[dict(type='LocalVisBackend')],
        save_dir=str(tmp_path))
    model = torch.nn.Module()
    model.last_synthetic_batch = batch
    if wrapped:
        from mmengine.model import MMDistributedDataParallel

        # a wrapper without running DDP's __init__ (no process group here):
        # is_model_wrapper only checks the registered wrapper classes
        wrapper = MMDistributedDataParallel.__new__(MMDistributedDataParallel)
        torch.nn.Module.__init__(wrapper)
        wrapper.module = model
        model = wrapper
    return types.SimpleNamespace(
        model=model, iter=iteration, max_iters=max_iters,
        visualizer=visualizer)


def _pngs(tmp_path):
    return sorted(
        glob.glob(osp.join(tmp_path, 'vis_data', 'vis_image', '*.png')))


def _grid_size(n, h, w, nrow=8, padding=2):
    """(width, height) of torchvision's make_grid."""
    cols = min(nrow, n)
    rows = -(-n // cols)
    return cols * (w + padding) + padding, rows * (h + padding) + padding


def test_grey_batch_writes_png_of_grid_size(tmp_path):
    hook = SyntheticImageVisualizationHook(interval=10)
    runner = _runner(tmp_path, torch.randn(10, 1, 32, 32), iteration=9)
    hook.after_train_iter(runner, batch_idx=9)
    files = _pngs(tmp_path)
    assert [osp.basename(f) for f in files] == ['synthetic_images_10.png']
    with Image.open(files[0]) as image:
        assert image.size == _grid_size(10, 32, 32)  # (274, 70)
        assert image.mode == 'RGB'
        pixels = np.asarray(image)
    # grey in, grey out; every image was stretched to the full [0, 255]
    assert (pixels[..., 0] == pixels[..., 1]).all()
    assert (pixels[..., 0] == pixels[..., 2]).all()
    assert pixels.max() == 255


def test_rgb_batch_truncated_to_max_images(tmp_path):
    hook = SyntheticImageVisualizationHook(
        interval=5, max_images=6, nrow=3, padding=1)
    batch = torch.randn(20, 3, 8, 12) * 5 + 3  # arbitrary value range
    runner = _runner(tmp_path, batch, iteration=4, wrapped=True)
    hook.after_train_iter(runner, batch_idx=4)
    files = _pngs(tmp_path)
    assert len(files) == 1 and files[0].endswith('synthetic_images_5.png')
    with Image.open(files[0]) as image:
        assert image.size == _grid_size(6, 8, 12, nrow=3, padding=1)
        assert image.mode == 'RGB'


def test_min_max_rescaling_per_image():
    hook = SyntheticImageVisualizationHook(nrow=2, padding=0)
    # two images of very different ranges; both must span [0, 255]
    first = torch.linspace(-100, 100, 16).view(1, 1, 4, 4)
    second = torch.linspace(0.0, 1e-3, 16).view(1, 1, 4, 4)
    grid = hook.make_grid_image(torch.cat([first, second]))
    assert grid.shape == (4, 8, 3) and grid.dtype == np.uint8
    for half in (grid[:, :4], grid[:, 4:]):
        assert half.min() == 0 and half.max() == 255
    # a constant image must not divide by zero
    flat = hook.make_grid_image(torch.full((1, 3, 4, 4), 7.0))
    assert (flat == 0).all()


def test_schedule_and_skips(tmp_path):
    hook = SyntheticImageVisualizationHook(interval=10)
    runner = _runner(tmp_path, torch.randn(2, 1, 4, 4), iteration=4,
                     max_iters=25)
    hook.after_train_iter(runner, batch_idx=4)  # iteration 5: not due
    assert _pngs(tmp_path) == []
    runner.iter = 24  # the last iteration is always saved
    hook.after_train_iter(runner, batch_idx=24)
    assert [osp.basename(f) for f in _pngs(tmp_path)] == \
        ['synthetic_images_25.png']
    # before the first step the batch is None: nothing, no error
    none_dir = tmp_path / 'none'
    runner = _runner(none_dir, None, iteration=9)
    hook.after_train_iter(runner, batch_idx=9)
    assert _pngs(none_dir) == []


def test_invalid_arguments():
    with pytest.raises(ValueError, match='interval'):
        SyntheticImageVisualizationHook(interval=0)
    with pytest.raises(ValueError, match='max_images'):
        SyntheticImageVisualizationHook(max_images=0)


def test_registered():
    from mmdfkd.registry import HOOKS
    hook = HOOKS.build(dict(type='SyntheticImageVisualizationHook'))
    assert isinstance(hook, SyntheticImageVisualizationHook)
    assert hook.priority == 'LOW'
