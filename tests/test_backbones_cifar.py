"""Tests of the DFKD model zoo backbones: WideResNet_CIFAR, VGG_CIFAR,
MobileNetV2_CIFAR, mmpretrain's ResNet_CIFAR as the DFKD papers' ResNet-18/34
(CIFAR and 64x64 Tiny-ImageNet), and DFKDLeNet5, each built inside
mmpretrain's ImageClassifier from a config through the mmdfkd registry."""
import pytest
import torch
from mmengine.analysis import get_model_complexity_info
from torch import nn

from mmdfkd.models.backbones import (MobileNetV2_CIFAR, VGG_CIFAR,
                                     WideResNet_CIFAR,
                                     dfkd_resnet_cifar_backbone)
from mmdfkd.models.utils import build_classifier
from mmdfkd.utils import register_all_modules
from mmdfkd.utils.teacher_conversion import TEACHER_ARCHS

register_all_modules(init_default_scope=False)

# Exact parameter counts of the classifiers (backbone + linear head), equal
# to those of the reference networks (tests/test_convert_teacher.py loads
# reference weights into these models strictly, key by key and shape by
# shape). Derivations, with conv = k*k*C_in*C_out, BN = 2*C, fc = C*n + n:
#   ResNet-18/34 (DAFL/kuangliu CIFAR ResNet): backbone 11,168,832 /
#     21,276,992 (mmpretrain's count, the reference's layer for layer);
#     + 512*n + n.
#   WRN-d-k: stem 432; per block 2 BNs and two 3x3 convs (+1x1 shortcut
#     when the width changes); final BN 2*64k; + 64k*n + n.
#   VGG-8/11/13 (3x3 convs with bias, each with BN): + 512*n + n.
#   MobileNetV2 (T=6, w=0.5, last_channel 1280): + 1280*n + n.
#   LeNet-5 / -half (DAFL, no BN): 60,856 / 15,308, + 84*n + n / 42*n + n.
# (arch, classes) -> (exact count, published figure, relative tolerance of
# the published figure). Published figures: ResNet-18/34 11.17M / 21.28M
# (CIFAR-10 heads, the kuangliu/DAFL ResNet); WRN-40-2 2.26M, WRN-16-2
# 0.70M, WRN-40-1 0.57M, VGG-13 9.46M, VGG-8 3.96M, MobileNetV2 0.81M (the
# CIFAR-100 figures of the RepDistiller-lineage KD tables); WRN-16-1 0.17M
# (ZSKT-lineage, CIFAR-10, 175,066 truncated, hence 3 %). VGG-11 (9.28M)
# and the Tiny-ImageNet heads have no published figure: only exact counts.
PARAMS = {
    ('resnet18', 10): (11_173_962, 11.17e6, 0.005),
    ('resnet34', 10): (21_282_122, 21.28e6, 0.005),
    ('resnet18', 200): (11_271_432, None, None),
    ('resnet34', 200): (21_379_592, None, None),
    ('wrn16_1', 10): (175_066, 0.17e6, 0.03),
    ('wrn16_2', 100): (703_284, 0.70e6, 0.01),
    ('wrn40_1', 100): (569_780, 0.57e6, 0.01),
    ('wrn40_2', 100): (2_255_156, 2.26e6, 0.005),
    ('wrn40_2', 10): (2_243_546, 2.2e6, 0.03),
    ('vgg8', 100): (3_965_028, 3.96e6, 0.005),
    ('vgg11', 100): (9_277_284, None, None),
    ('vgg13', 100): (9_462_180, 9.46e6, 0.005),
    ('mobilenetv2', 100): (812_836, 0.81e6, 0.01),
    ('mobilenetv2_tv', 100): (2_351_972, None, None),
    ('lenet5', 10): (61_706, None, None),
    ('lenet5_half', 10): (15_738, None, None),
}
# Inputs: 32x32 RGB (CIFAR), 64x64 RGB (Tiny-ImageNet, 200 classes), 32x32
# grey for LeNet (DAFL pads/resizes the 28x28 MNIST digits to 32x32).
INPUT_SIZE = {200: 64}

# (arch, classes) -> (FLOPs counted by mmengine, multiply-accumulates of the
# convolutions and linear layers alone, counted here by hooks). mmengine
# counts one FLOP per multiply-add plus the BN / pooling element operations.
# Published figures: ResNet-18 CIFAR 0.56 GFLOPs, ResNet-34 1.16 GFLOPs,
# WRN-40-2 0.33 GFLOPs (32x32 inputs).
FLOPS = {
    ('resnet18', 10): (556_659_712, 555_422_720),
    ('resnet34', 10): (1_161_458_688, 1_159_402_496),
    ('resnet18', 200): (2_226_720_768, 2_221_772_800),
    ('resnet34', 200): (4_645_916_672, 4_637_691_904),
    ('wrn16_1', 10): (26_923_648, 26_657_408),
    ('wrn16_2', 10): (101_606_656, 101_106_944),
    ('wrn40_1', 10): (84_005_504, 83_280_512),
    ('wrn40_2', 10): (329_016_576, 327_599_360),
    ('vgg8', 10): (96_416_768, 96_146_432),
    ('vgg11', 10): (209_728_512, 209_392_640),
    ('vgg13', 10): (285_422_592, 284_890_112),
    ('mobilenetv2', 10): (6_836_864, 6_408_448),
    ('mobilenetv2_tv', 10): (6_398_784, 6_124_928),
    ('lenet5', 10): (416_520, 416_520),
    ('lenet5_half', 10): (133_740, 133_740),
}
PUBLISHED_GFLOPS = {
    ('resnet18', 10): 0.56,
    ('resnet34', 10): 1.16,
    ('wrn40_2', 10): 0.33
}


def build(arch, num_classes):
    return build_classifier(TEACHER_ARCHS[arch].model_config(num_classes))


def input_shape(arch, num_classes):
    size = INPUT_SIZE.get(num_classes, 32)
    return (TEACHER_ARCHS[arch].input_channels, size, size)


def count_params(module):
    return sum(p.numel() for p in module.parameters())


def conv_linear_macs(model, shape):
    """Multiply-accumulates of every Conv2d and Linear for one image."""
    total = 0

    def count(module, inputs, output):
        nonlocal total
        if isinstance(module, nn.Conv2d):
            kh, kw = module.kernel_size
            total += (output[0].numel() * kh * kw *
                      module.in_channels // module.groups)
        else:
            total += module.in_features * module.out_features

    handles = [
        m.register_forward_hook(count) for m in model.modules()
        if isinstance(m, (nn.Conv2d, nn.Linear))
    ]
    with torch.no_grad():
        model(torch.zeros(1, *shape), mode='tensor')
    for handle in handles:
        handle.remove()
    return total


@pytest.mark.parametrize('arch,num_classes', sorted(PARAMS))
def test_builds_and_runs_in_image_classifier(arch, num_classes):
    model = build(arch, num_classes).eval()
    shape = input_shape(arch, num_classes)
    x = torch.randn(2, *shape)
    with torch.no_grad():
        feats = model.extract_feat(x)
        logits = model(x, mode='tensor')
    assert logits.shape == (2, num_classes)
    # the head reads the last feature; its width is the head's in_channels
    assert feats[-1].shape == (2, TEACHER_ARCHS[arch].feature_channels)
    assert torch.isfinite(logits).all()
    # the backbone's final map is post-ReLU
    backbone_out = model.backbone(x)
    assert isinstance(backbone_out, tuple)
    assert (backbone_out[-1] >= 0).all()


@pytest.mark.parametrize('arch,num_classes', sorted(PARAMS))
def test_parameter_count(arch, num_classes):
    exact, published, tolerance = PARAMS[(arch, num_classes)]
    count = count_params(build(arch, num_classes))
    assert count == exact
    if published is not None:
        assert abs(count - published) <= tolerance * published


@pytest.mark.parametrize('arch,num_classes', sorted(FLOPS))
def test_flops(arch, num_classes):
    model = build(arch, num_classes).eval()
    shape = input_shape(arch, num_classes)
    flops, macs = FLOPS[(arch, num_classes)]
    assert conv_linear_macs(model, shape) == macs
    info = get_model_complexity_info(
        model, input_shape=shape, show_table=False, show_arch=False)
    assert info['flops'] == pytest.approx(flops, rel=1e-3)
    assert info['params'] == count_params(model)
    # BN and pooling add a few per cent on top of the convolutions at most
    assert macs <= info['flops'] <= 1.07 * macs
    published = PUBLISHED_GFLOPS.get((arch, num_classes))
    if published is not None:
        assert info['flops'] / 1e9 == pytest.approx(published, rel=0.01)


@pytest.mark.parametrize('depth,blocks', [(18, (2, 2, 2, 2)),
                                          (34, (3, 4, 6, 3))])
def test_resnet_cifar_is_the_dfkd_resnet(depth, blocks):
    """mmpretrain's ResNet_CIFAR has the DAFL/kuangliu structure: 3x3
    stride-1 stem without bias, no max-pool, BasicBlocks 64-128-256-512
    with a 1x1 conv + BN shortcut where the shape changes."""
    model = build(f'resnet{depth}', 10)
    backbone = model.backbone
    assert type(backbone).__name__ == 'ResNet_CIFAR'
    assert backbone.conv1.kernel_size == (3, 3)
    assert backbone.conv1.stride == (1, 1)
    assert backbone.conv1.bias is None
    assert not any(
        isinstance(m, nn.MaxPool2d) for m in backbone.modules())
    for stage, (num_blocks, width) in enumerate(
            zip(blocks, (64, 128, 256, 512), strict=True), start=1):
        layer = getattr(backbone, f'layer{stage}')
        assert len(layer) == num_blocks
        for i, block in enumerate(layer):
            assert type(block).__name__ == 'BasicBlock'
            assert block.conv1.out_channels == width
            assert block.conv1.stride == ((2, 2) if i == 0 and stage > 1
                                          else (1, 1))
            if i == 0 and stage > 1:
                conv, bn = block.downsample
                assert conv.kernel_size == (1, 1) and conv.stride == (2, 2)
                assert isinstance(bn, nn.BatchNorm2d)
            else:
                assert block.downsample is None
    assert type(model.neck).__name__ == 'GlobalAveragePooling'
    assert model.head.fc.in_features == 512
    # the same backbone serves 64x64 Tiny-ImageNet: 8x8 final map
    assert backbone(torch.randn(1, 3, 64, 64))[-1].shape == (1, 512, 8, 8)


def test_dfkd_resnet_depths():
    assert dfkd_resnet_cifar_backbone(34)['depth'] == 34
    with pytest.raises(ValueError, match='18 or 34'):
        dfkd_resnet_cifar_backbone(50)


@pytest.mark.parametrize('depth,widen_factor', [(16, 1), (16, 2), (40, 1),
                                                (40, 2)])
def test_wide_resnet_outputs(depth, widen_factor):
    k = widen_factor
    backbone = WideResNet_CIFAR(depth, widen_factor, out_indices=(0, 1, 2, 3))
    outs = backbone(torch.randn(2, 3, 32, 32))
    assert [tuple(o.shape[1:]) for o in outs] == [(16 * k, 32, 32),
                                                 (32 * k, 16, 16),
                                                 (64 * k, 8, 8),
                                                 (64 * k, 8, 8)]
    assert backbone.out_channels == 64 * k
    num_blocks = (depth - 4) // 6
    assert all(
        len(getattr(backbone, f'block{i}').layer) == num_blocks
        for i in (1, 2, 3))
    # a projection shortcut exactly where the width changes
    assert (backbone.block1.layer[0].convShortcut is None) == (k == 1)
    assert backbone.block2.layer[0].convShortcut is not None
    assert backbone.block2.layer[1].convShortcut is None


def test_vgg_outputs_and_64px_pooling():
    backbone = VGG_CIFAR(11, out_indices=(0, 1, 2, 3, 4))
    outs = backbone(torch.randn(2, 3, 32, 32))
    assert [tuple(o.shape[1:]) for o in outs] == [(64, 32, 32),
                                                 (128, 16, 16),
                                                 (256, 8, 8), (512, 4, 4),
                                                 (512, 4, 4)]
    # RepDistiller max-pools block3 only for 64x64 inputs
    outs = backbone(torch.randn(1, 3, 64, 64))
    assert outs[3].shape[-1] == 8 and outs[4].shape[-1] == 4
    convs = {
        depth: sum(isinstance(m, nn.Conv2d)
                   for m in VGG_CIFAR(depth).modules())
        for depth in (8, 11, 13, 16, 19)
    }
    assert convs == {8: 5, 11: 8, 13: 10, 16: 13, 19: 16}
    # every conv has a bias and a BN after it, as in vgg*_bn
    block = VGG_CIFAR(13).block1
    assert [type(m) for m in block] == [
        nn.Conv2d, nn.BatchNorm2d, nn.ReLU, nn.Conv2d, nn.BatchNorm2d
    ]
    assert block[0].bias is not None


def test_mobilenet_v2_cifar_structure():
    backbone = MobileNetV2_CIFAR(out_indices=tuple(range(8)))
    outs = backbone(torch.randn(2, 3, 32, 32))
    assert [o.shape[1] for o in outs] == [8, 12, 16, 32, 48, 80, 160, 1280]
    assert [o.shape[-1] for o in outs] == [16, 16, 8, 4, 4, 2, 2, 2]
    # RepDistiller keeps the 1x1 expansion even for t=1 (16 -> 16 -> 8)
    first = backbone.blocks[0][0].conv
    assert len(first) == 8 and first[0].out_channels == 16
    # expansion T=6 from the second stage on (8 -> 48 -> 12)
    assert backbone.blocks[1][0].conv[0].out_channels == 8 * 6
    # last_channel rule: 1280 up to width 1.0, int(1280 w) above
    assert MobileNetV2_CIFAR(widen_factor=1.0).out_channels == 1280
    assert MobileNetV2_CIFAR(widen_factor=1.5).out_channels == 1920
    assert not any(isinstance(m, nn.ReLU6) for m in backbone.modules())


@pytest.mark.parametrize('backbone_cfg,frozen,stem,stages', [
    (dict(type='WideResNet_CIFAR', depth=16, widen_factor=1), 2, 'conv1',
     ['block1', 'block2']),
    (dict(type='VGG_CIFAR', depth=8), 1, 'block0', ['block1']),
    (dict(type='MobileNetV2_CIFAR'), 2, 'conv1', ['blocks.0', 'blocks.1']),
])
def test_frozen_stages(backbone_cfg, frozen, stem, stages):
    from mmdfkd.registry import MODELS
    backbone = MODELS.build(dict(backbone_cfg, frozen_stages=frozen))
    backbone.train()
    modules = dict(backbone.named_modules())
    for name in [stem] + stages:
        module = modules[name]
        assert not any(p.requires_grad for p in module.parameters())
        assert not any(m.training for m in module.modules())
    frozen_names = tuple(n + '.' for n in [stem] + stages)
    trainable = [
        n for n, p in backbone.named_parameters()
        if not n.startswith(frozen_names)
    ]
    assert trainable and all(
        p.requires_grad for n, p in backbone.named_parameters()
        if n in trainable)


def test_default_init_follows_the_reference():
    """Kaiming-normal (fan-out) convs and BN weight 1, as the references'
    own initialisation; the head keeps mmpretrain's Normal(0, 0.01)."""
    torch.manual_seed(0)
    model = build('wrn40_2', 100)
    model.init_weights()
    conv = model.backbone.block3.layer[1].conv1
    fan_out = conv.out_channels * 9
    assert conv.weight.std().item() == pytest.approx((2 / fan_out)**0.5,
                                                     rel=0.05)
    bn = model.backbone.block2.layer[0].bn2
    assert torch.equal(bn.weight.data, torch.ones_like(bn.weight))
    assert model.head.fc.weight.std().item() == pytest.approx(0.01, rel=0.1)


def test_invalid_arguments():
    with pytest.raises(ValueError, match='6n \\+ 4'):
        WideResNet_CIFAR(depth=18)
    with pytest.raises(ValueError, match='out_indices'):
        WideResNet_CIFAR(depth=16, out_indices=(4, ))
    with pytest.raises(ValueError, match='depth'):
        VGG_CIFAR(depth=12)
    with pytest.raises(ValueError, match='frozen_stages'):
        VGG_CIFAR(depth=8, frozen_stages=5)
    with pytest.raises(ValueError, match='widen_factor'):
        MobileNetV2_CIFAR(widen_factor=0)
