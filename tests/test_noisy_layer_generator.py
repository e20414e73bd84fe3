"""NAYER's building blocks: ``NoisyLinear`` (K-to-1 noisy layers) and
``NoisyLayerGenerator`` (label-embedding input), with the embedding file
formats."""
import numpy as np
import pytest
import torch
import torch.nn.functional as F

from mmdfkd.models.generators import (NoisyLayerGenerator, NoisyLinear,
                                      load_label_embeddings)
from mmdfkd.registry import MODELS
from mmdfkd.utils import register_all_modules

register_all_modules()


def _table(classes=10, dim=12, seed=0):
    return torch.randn(classes, dim,
                       generator=torch.Generator().manual_seed(seed))


def _gen(**kwargs):
    cfg = dict(label_embeddings=_table(), batch_size=25, img_size=8,
               out_channels=3, hidden_channels=4, noise_dim=16)
    cfg.update(kwargs)
    torch.manual_seed(0)
    return NoisyLayerGenerator(**cfg)


# --------------------------------------------------------------------------
# NoisyLinear
# --------------------------------------------------------------------------
def test_each_chunk_goes_through_its_own_layer():
    layer = NoisyLinear(4, 3, num_layers=3, chunk_size=5)
    x = torch.randn(12, 4)  # chunks of 5, 5 and 2 samples
    y = layer(x)
    assert y.shape == (12, 3)
    for k, (start, stop) in enumerate([(0, 5), (5, 10), (10, 12)]):
        expected = F.linear(x[start:stop], layer.weight[k], layer.bias[k])
        assert torch.allclose(y[start:stop], expected)


def test_redraw_is_standard_normal_with_zero_bias():
    layer = NoisyLinear(64, 64, num_layers=4, chunk_size=10)
    with torch.no_grad():
        layer.bias.fill_(3.0)
    before = layer.weight.detach().clone()
    layer.redraw()
    assert torch.equal(layer.bias, torch.zeros_like(layer.bias))
    assert not torch.equal(layer.weight, before)
    assert abs(layer.weight.mean().item()) < 0.05
    assert abs(layer.weight.std().item() - 1) < 0.05
    a, b = (NoisyLinear(3, 2), NoisyLinear(3, 2))
    a.redraw(torch.Generator().manual_seed(1))
    b.redraw(torch.Generator().manual_seed(1))
    assert torch.equal(a.weight, b.weight)
    # a generator re-initialisation (reset_parameters) re-draws too
    before = a.weight.detach().clone()
    a.reset_parameters()
    assert not torch.equal(a.weight, before)


def test_noisy_linear_errors():
    with pytest.raises(ValueError, match='chunk_size'):
        NoisyLinear(4, 3, num_layers=2)
    with pytest.raises(ValueError, match='num_layers'):
        NoisyLinear(4, 3, num_layers=0)
    with pytest.raises(ValueError, match='noisy layers'):
        NoisyLinear(4, 3, num_layers=2, chunk_size=5)(torch.randn(11, 4))
    single = NoisyLinear(4, 3)  # one layer for the whole batch
    assert single(torch.randn(50, 4)).shape == (50, 3)


# --------------------------------------------------------------------------
# NoisyLayerGenerator
# --------------------------------------------------------------------------
def test_generator_shapes_range_and_k_layers():
    gen = _gen()
    assert gen.noisy_layer.num_layers == 3  # ceil(25 / 10 classes)
    assert gen.image_shape == (3, 8, 8)
    targets = torch.arange(25) % 10
    images = gen(None, targets)
    assert images.shape == (25, 3, 8, 8)
    assert images.min() >= 0 and images.max() <= 1  # sigmoid
    with pytest.raises(ValueError, match='noisy layers'):
        gen(None, torch.arange(31) % 10)


def test_generator_gradients_reach_the_noisy_layers_not_the_table():
    gen = _gen()
    gen(None, torch.arange(20) % 10).mean().backward()
    assert gen.noisy_layer.weight.grad.abs().sum() > 0
    assert gen.fc.weight.grad.abs().sum() > 0
    assert 'label_embeddings' in gen.state_dict()
    assert 'label_embeddings' not in dict(gen.named_parameters())


def test_redrawn_noise_changes_the_images_of_the_same_labels():
    gen = _gen().eval()
    targets = torch.arange(20) % 10
    first = gen(None, targets)
    gen.noisy_layer.redraw()
    assert not torch.allclose(first, gen(None, targets))


def test_generator_checks_targets_and_img_size():
    gen = _gen()
    with pytest.raises(ValueError, match='targets'):
        gen(None, None)
    with pytest.raises(ValueError, match=r'\[0, 10\)'):
        gen(None, torch.tensor([0, 10]))
    with pytest.raises(ValueError, match='multiple of 4'):
        _gen(img_size=30)


def test_embedding_file_formats(tmp_path):
    table = _table(classes=4, dim=6)
    torch.save(table, tmp_path / 'plain.pth')
    torch.save(dict(embeddings=table, class_names=list('abcd'),
                    encoder='all-MiniLM-L6-v2'), tmp_path / 'dict.pt')
    np.save(tmp_path / 'table.npy', table.numpy())
    for source in (tmp_path / 'plain.pth', tmp_path / 'dict.pt',
                   tmp_path / 'table.npy'):
        assert torch.equal(load_label_embeddings(str(source)), table)
    assert torch.equal(load_label_embeddings(table.tolist()), table)
    gen = MODELS.build(
        dict(type='NoisyLayerGenerator',
             label_embeddings=str(tmp_path / 'dict.pt'), batch_size=8,
             img_size=4, hidden_channels=2, noise_dim=4))
    assert gen.num_classes == 4 and gen.embedding_dim == 6
    assert gen.noisy_layer.num_layers == 2


def test_embedding_file_errors(tmp_path):
    table = _table(classes=4, dim=6)
    torch.save(dict(embeddings=table, class_names=['a']), tmp_path / 'n.pt')
    torch.save(dict(table=table), tmp_path / 'k.pt')
    torch.save(table[0], tmp_path / 'v.pt')
    (tmp_path / 'e.txt').write_text('1 2 3')
    cases = [('n.pt', ValueError, 'class names'),
             ('k.pt', KeyError, 'embeddings'),
             ('v.pt', ValueError, 'num_classes, dim'),
             ('e.txt', ValueError, '.npy'),
             ('missing.pt', FileNotFoundError, 'not found')]
    for name, error, match in cases:
        with pytest.raises(error, match=match):
            load_label_embeddings(str(tmp_path / name))


def test_pickled_objects_are_refused(tmp_path):
    """Embedding files are read with weights_only=True."""
    import argparse
    import pickle

    path = tmp_path / 'evil.pt'
    # any non-allow-listed object, e.g. an argparse.Namespace
    torch.save(dict(embeddings=_table(), extra=argparse.Namespace(a=1)),
               path)
    with pytest.raises(pickle.UnpicklingError):
        load_label_embeddings(str(path))
