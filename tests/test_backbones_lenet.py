"""Tests of DFKDLeNet5, the LeNet-5 / LeNet-5-half of DAFL (Chen et al.,
ICCV 2019)."""
import pytest
import torch
from torch import nn

import mmpretrain.models  # noqa: F401  (registers ImageClassifier & co.)
from mmengine.registry import DefaultScope
from mmdfkd.models.backbones import DFKDLeNet5
from mmdfkd.registry import MODELS

# Parameter counts by hand (conv k*k*C_in*C_out [+ C_out bias]; with BN the
# conv/fc bias is dropped and BN adds weight + bias = 2 per channel):
#
# LeNet-5, no BN:   conv1 25*1*6 + 6          =    156
#                   conv2 25*6*16 + 16        =  2,416
#                   conv3 25*16*120 + 120     = 48,120
#                   fc    120*84 + 84         = 10,164   -> 60,856
# LeNet-5, BN:      150 + 12 | 2,400 + 32 | 48,000 + 240 | 10,080 + 168
#                   = 162 + 2,432 + 48,240 + 10,248      -> 61,082
# LeNet-5-half, no BN: conv1 25*1*3 + 3       =     78
#                   conv2 25*3*8 + 8          =    608
#                   conv3 25*8*60 + 60        = 12,060
#                   fc    60*42 + 42          =  2,562   -> 15,308
# LeNet-5-half, BN: 75 + 6 | 600 + 16 | 12,000 + 120 | 2,520 + 84
#                   = 81 + 616 + 12,120 + 2,604          -> 15,421
PARAM_COUNTS = {
    (1.0, False): 60856,
    (1.0, True): 61082,
    (0.5, False): 15308,
    (0.5, True): 15421,
}
CASES = sorted(PARAM_COUNTS)


def count_params(module):
    return sum(p.numel() for p in module.parameters())


@pytest.mark.parametrize('width,with_bn', CASES)
def test_output_shape(width, with_bn):
    model = DFKDLeNet5(width_multiplier=width, with_bn=with_bn)
    out = model(torch.randn(4, 1, 32, 32))
    assert isinstance(out, tuple) and len(out) == 1
    assert out[0].shape == (4, int(84 * width))
    assert model.out_channels == int(84 * width)
    # the feature follows a ReLU
    assert (out[0] >= 0).all()


@pytest.mark.parametrize('width,with_bn', CASES)
def test_param_count(width, with_bn):
    model = DFKDLeNet5(width_multiplier=width, with_bn=with_bn)
    assert count_params(model) == PARAM_COUNTS[(width, with_bn)]


def test_batchnorm_layers():
    """DeepInversion-style priors need one BN per conv and one after fc."""
    bns = [m for m in DFKDLeNet5().modules()
           if isinstance(m, nn.modules.batchnorm._BatchNorm)]
    assert [type(m) for m in bns] == [nn.BatchNorm2d] * 3 + [nn.BatchNorm1d]
    assert [m.num_features for m in bns] == [6, 16, 120, 84]
    no_bn = DFKDLeNet5(with_bn=False)
    assert not any(
        isinstance(m, nn.modules.batchnorm._BatchNorm)
        for m in no_bn.modules())


def test_in_channels():
    model = DFKDLeNet5(in_channels=3, width_multiplier=0.5)
    assert model.conv1.weight.shape == (3, 3, 5, 5)
    assert model(torch.randn(2, 3, 32, 32))[0].shape == (2, 42)


def test_invalid_arguments():
    with pytest.raises(ValueError, match='width_multiplier'):
        DFKDLeNet5(width_multiplier=0.25)
    with pytest.raises(ValueError, match='32x32'):
        DFKDLeNet5()(torch.randn(2, 1, 28, 28))


@pytest.mark.parametrize('width,with_bn', CASES)
def test_gradient_flows(width, with_bn):
    torch.manual_seed(0)
    model = DFKDLeNet5(width_multiplier=width, with_bn=with_bn)
    x = torch.randn(8, 1, 32, 32, requires_grad=True)
    model(x)[0].square().sum().backward()
    assert x.grad is not None and x.grad.abs().sum() > 0
    for name, param in model.named_parameters():
        assert param.grad is not None, name
        assert torch.isfinite(param.grad).all(), name
        assert param.grad.abs().sum() > 0, name


@pytest.mark.parametrize('width', [1.0, 0.5])
def test_as_image_classifier_backbone(width):
    """The config pattern: neck=None and a LinearClsHead on 84 (42) dims."""
    torch.manual_seed(0)
    # ImageClassifier builds its backbone from mmpretrain's registry, which
    # reaches mmdfkd's child registry only under the mmdfkd default scope
    with DefaultScope.overwrite_default_scope('mmdfkd'):
        model = MODELS.build(
            dict(
                type='ImageClassifier',
                backbone=dict(type='DFKDLeNet5', width_multiplier=width),
                neck=None,
                head=dict(
                    type='LinearClsHead',
                    num_classes=10,
                    in_channels=int(84 * width),
                    loss=dict(type='CrossEntropyLoss'))))
    assert isinstance(model.backbone, DFKDLeNet5)
    x = torch.randn(4, 1, 32, 32)
    logits = model(x, mode='tensor')
    assert logits.shape == (4, 10)

    from mmpretrain.structures import DataSample
    samples = [DataSample().set_gt_label(i) for i in range(4)]
    losses = model(x, samples, mode='loss')
    losses['loss'].backward()
    assert model.backbone.conv1.weight.grad is not None
    assert model.head.fc.weight.grad is not None
