"""Unit tests of ``DAFLGenerator`` and ``LearnableImages``."""
import pytest
import torch
from torch import nn

from mmdfkd.models.generators import DAFLGenerator, LearnableImages
from mmdfkd.registry import MODELS
from mmdfkd.utils import register_all_modules

register_all_modules()

HIDDEN = 8  # small hidden width keeps every test fast


def _gen(**kwargs):
    cfg = dict(img_size=8, latent_dim=6, hidden_channels=HIDDEN)
    cfg.update(kwargs)
    torch.manual_seed(0)
    return DAFLGenerator(**cfg)


def _z(n=4, dim=6):
    return torch.randn(n, dim, generator=torch.Generator().manual_seed(1))


# --------------------------------------------------------------------------
# DAFLGenerator
# --------------------------------------------------------------------------
@pytest.mark.parametrize('img_size', [8, 28, 32])
@pytest.mark.parametrize('out_channels', [1, 3])
def test_dafl_output_shape(img_size, out_channels):
    gen = _gen(img_size=img_size, out_channels=out_channels)
    out = gen(_z(3))
    assert out.shape == (3, out_channels, img_size, img_size)
    assert gen.image_shape == (out_channels, img_size, img_size)


@pytest.mark.parametrize('img_size', [30, 26, 33])
def test_dafl_img_size_not_multiple_of_4_raises(img_size):
    with pytest.raises(ValueError, match='multiple of 4'):
        DAFLGenerator(img_size=img_size, latent_dim=6, hidden_channels=HIDDEN)


def test_dafl_invalid_activation_and_norm():
    with pytest.raises(ValueError, match='final_activation'):
        _gen(final_activation='relu')
    with pytest.raises(ValueError, match='final_norm'):
        _gen(final_norm='batch')


def test_dafl_tanh_without_final_norm_within_minus1_1():
    gen = _gen(final_activation='tanh', final_norm=None)
    # large latents push the pre-activation into saturation
    out = gen(_z(8) * 50)
    assert out.min() >= -1.0 and out.max() <= 1.0
    assert isinstance(gen.block2[-1], nn.Tanh)


def test_dafl_sigmoid_within_0_1():
    gen = _gen(final_activation='sigmoid', final_norm=None)
    out = gen(_z(8) * 50)
    assert out.min() >= 0.0 and out.max() <= 1.0
    assert isinstance(gen.block2[-1], nn.Sigmoid)


def test_dafl_no_final_activation_is_unbounded_conv_output():
    gen = _gen(final_activation=None, final_norm=None)
    assert isinstance(gen.block2[-1], nn.Conv2d)
    assert gen(_z()).shape == (4, 3, 8, 8)


def test_dafl_non_affine_final_bn_standardises_batch():
    gen = _gen(final_activation='tanh', final_norm='non_affine')
    gen.train()
    out = gen(_z(16))
    final_bn = gen.block2[-1]
    assert isinstance(final_bn, nn.BatchNorm2d)
    assert not final_bn.affine
    assert final_bn.weight is None and final_bn.bias is None
    mean = out.mean(dim=(0, 2, 3))
    var = out.var(dim=(0, 2, 3), unbiased=False)
    assert torch.allclose(mean, torch.zeros_like(mean), atol=1e-5)
    # var = v / (v + eps) with eps = 1e-5 of the final BN
    assert torch.allclose(var, torch.ones_like(var), atol=1e-2)


def test_dafl_affine_final_bn_has_parameters():
    gen = _gen(final_activation=None, final_norm='affine')
    final_bn = gen.block2[-1]
    assert isinstance(final_bn, nn.BatchNorm2d) and final_bn.affine
    assert final_bn.weight.shape == (3, )


@pytest.mark.parametrize('bn_eps', [0.8, 1e-5])
def test_dafl_bn_eps_on_inner_bns_only(bn_eps):
    gen = _gen(bn_eps=bn_eps)
    bns = [m for m in gen.modules() if isinstance(m, nn.BatchNorm2d)]
    # input BN, two inner BNs, final BN
    assert len(bns) == 4
    assert gen.block1[1].eps == bn_eps
    assert gen.block2[1].eps == bn_eps
    assert gen.input_bn[0].eps == 1e-5
    assert gen.block2[-1].eps == 1e-5


def test_dafl_act_after_input_bn_and_conv_bias():
    gen = _gen(act_after_input_bn=True, conv_bias=False)
    assert isinstance(gen.input_bn[1], nn.LeakyReLU)
    assert gen.block1[0].bias is None and gen.block2[0].bias is None
    # the output conv keeps its bias
    assert gen.block2[3].bias is not None
    assert len(_gen().input_bn) == 1


@pytest.mark.parametrize('latents', [
    torch.randn(4, 5),
    torch.randn(4, 7),
    torch.randn(4, 6, 1),
    torch.randn(6),
])
def test_dafl_wrong_latent_shape_raises(latents):
    gen = _gen()
    with pytest.raises(ValueError, match='latent_dim'):
        gen(latents)


def test_dafl_targets_accepted_and_unused():
    gen = _gen().eval()
    z = _z()
    assert torch.equal(gen(z), gen(z, torch.tensor([0, 1, 2, 3])))


@pytest.mark.parametrize(
    'final_activation,final_norm',
    [('tanh', 'non_affine'), (None, 'affine'), ('sigmoid', None)])
def test_dafl_gradients_reach_every_parameter(final_activation, final_norm):
    gen = _gen(final_activation=final_activation, final_norm=final_norm,
               act_after_input_bn=final_norm is None)
    gen.train()
    out = gen(_z(4))
    # with a non-affine final BN, output.sum() is identically 0 per channel;
    # weight the pixels so that every parameter gets a non-trivial gradient
    w = torch.linspace(-1, 2, out.numel()).view_as(out)
    (out * w).sum().backward()
    params = dict(gen.named_parameters())
    assert params
    for name, p in params.items():
        assert p.grad is not None, name
        assert torch.isfinite(p.grad).all(), name
        assert p.grad.abs().sum() > 0, name


def test_dafl_output_sum_backward_gives_grad_to_every_parameter():
    gen = _gen(final_activation='tanh', final_norm=None)
    gen(_z(4)).sum().backward()
    for name, p in gen.named_parameters():
        assert p.grad is not None, name


def test_dafl_buildable_from_registry():
    gen = MODELS.build(
        dict(type='DAFLGenerator', img_size=8, latent_dim=6,
             hidden_channels=HIDDEN))
    assert isinstance(gen, DAFLGenerator)


# --------------------------------------------------------------------------
# LearnableImages
# --------------------------------------------------------------------------
def test_learnable_images_shape():
    gen = LearnableImages(batch_size=4, image_shape=(3, 5, 6))
    out = gen()
    assert out.shape == (4, 3, 5, 6)
    assert out is gen.images
    assert gen(torch.zeros(4, 10)).shape == (4, 3, 5, 6)
    assert gen.rank_local is True


def test_learnable_images_reset_changes_values():
    gen = LearnableImages(batch_size=2, image_shape=(1, 4, 4))
    before = gen.images.detach().clone()
    param = gen.images
    gen.reset()
    assert gen.images is param  # same Parameter, new values (optimiser ok)
    assert not torch.equal(before, gen.images.detach())


def test_learnable_images_project_clamps():
    gen = LearnableImages(
        batch_size=2, image_shape=(1, 4, 4), value_range=(-0.5, 0.25))
    with torch.no_grad():
        gen.images.mul_(10)
    assert gen.images.min() < -0.5 and gen.images.max() > 0.25
    gen.project()
    assert gen.images.min() >= -0.5 and gen.images.max() <= 0.25
    # values already in range are unchanged
    inside = (gen.images > -0.5) & (gen.images < 0.25)
    assert inside.any()


def test_learnable_images_project_without_range_is_noop():
    gen = LearnableImages(batch_size=2, image_shape=(1, 2, 2))
    before = gen.images.detach().clone()
    gen.project()
    assert torch.equal(before, gen.images.detach())


def test_learnable_images_batch_mismatch_raises():
    gen = LearnableImages(batch_size=4, image_shape=(1, 2, 2))
    with pytest.raises(ValueError, match='batch_size'):
        gen(torch.zeros(3, 10))
    with pytest.raises(ValueError, match='positive'):
        LearnableImages(batch_size=0, image_shape=(1, 2, 2))


def test_learnable_images_gradient():
    gen = LearnableImages(batch_size=2, image_shape=(1, 2, 2))
    (gen() * 3).sum().backward()
    assert gen.images.grad is not None
    assert torch.equal(gen.images.grad, torch.full((2, 1, 2, 2), 3.0))
    assert [n for n, _ in gen.named_parameters()] == ['images']


def test_learnable_images_buildable_from_registry():
    gen = MODELS.build(
        dict(type='LearnableImages', batch_size=2, image_shape=[3, 4, 4]))
    assert isinstance(gen, LearnableImages)
    assert gen.image_shape == (3, 4, 4)
