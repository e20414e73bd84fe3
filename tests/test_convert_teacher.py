"""Tests of the teacher converter (mmdfkd.utils.teacher_conversion and
tools/convert_teacher.py).

Each reference network of the DFKD repositories is re-implemented here with
the repository's module names (so its ``state_dict()`` has the reference key
layout) and the repository's forward pass; torchvision's own ResNet and
MobileNetV2 stand for the torchvision-style checkpoints. A converted
checkpoint must load strictly into our model and give the reference's
outputs."""
import os
import re

import pytest
import torch
import torch.nn.functional as F
import torchvision
from torch import nn

from conftest import run_tool
from mmdfkd.utils import register_all_modules
from mmdfkd.utils.checkpoint import (CorruptCheckpointError,
                                     load_checkpoint_file,
                                     load_teacher_weights)
from mmdfkd.utils.teacher_conversion import (
    TEACHER_ARCHS, TeacherConversionError, build_teacher_model,
    convert_teacher_state_dict, hashed_checkpoint_path,
    load_reference_checkpoint, save_converted_teacher, sha256_of_file)

register_all_modules(init_default_scope=False)


# --------------------------------------------------------------------------
# Reference-layout networks
# --------------------------------------------------------------------------
class DAFLBlock(nn.Module):
    """DAFL / DFAD / CMI BasicBlock: conv-bn-relu-conv-bn + shortcut, relu."""

    def __init__(self, cin, cout, stride):
        super().__init__()
        self.conv1 = nn.Conv2d(cin, cout, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(cout)
        self.conv2 = nn.Conv2d(cout, cout, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(cout)
        self.shortcut = nn.Sequential()
        if stride != 1 or cin != cout:
            self.shortcut = nn.Sequential(
                nn.Conv2d(cin, cout, 1, stride, bias=False),
                nn.BatchNorm2d(cout))

    def forward(self, x):
        out = self.bn2(self.conv2(F.relu(self.bn1(self.conv1(x)))))
        return F.relu(out + self.shortcut(x))


class DAFLResNet(nn.Module):
    """DAFL's CIFAR ResNet (``linear`` head); ``fixed_pool`` is DAFL/DFAD's
    ``avg_pool2d(out, 4)``, otherwise CMI/NAYER's adaptive pool."""

    def __init__(self, blocks, num_classes, fixed_pool=True):
        super().__init__()
        self.fixed_pool = fixed_pool
        self.conv1 = nn.Conv2d(3, 64, 3, 1, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(64)
        cin = 64
        widths = (64, 128, 256, 512)
        for i, (n, width) in enumerate(zip(blocks, widths, strict=True)):
            layers = []
            for j in range(n):
                layers.append(
                    DAFLBlock(cin, width, 2 if (j == 0 and i > 0) else 1))
                cin = width
            self.add_module(f'layer{i + 1}', nn.Sequential(*layers))
        self.linear = nn.Linear(512, num_classes)

    def forward(self, x):
        out = F.relu(self.bn1(self.conv1(x)))
        for i in range(1, 5):
            out = getattr(self, f'layer{i}')(out)
        out = (F.avg_pool2d(out, 4)
               if self.fixed_pool else F.adaptive_avg_pool2d(out, 1))
        return self.linear(out.flatten(1))


def torchvision_cifar_resnet(depth, num_classes, conv1_bias=False):
    """AdaDFKD's patched torchvision ResNet (3x3 stride-1 stem, no
    max-pool); ``conv1_bias`` gives TA-DFKD's resnet_tiny stem."""
    model = getattr(torchvision.models, f'resnet{depth}')(
        num_classes=num_classes)
    model.conv1 = nn.Conv2d(3, 64, 3, 1, 1, bias=conv1_bias)
    model.maxpool = nn.Identity()
    return model


class ZSKTBlock(nn.Module):
    """polo5 WRN block; the shortcut convolves the *activated* input."""

    def __init__(self, cin, cout, stride):
        super().__init__()
        self.bn1 = nn.BatchNorm2d(cin)
        self.conv1 = nn.Conv2d(cin, cout, 3, stride, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(cout)
        self.conv2 = nn.Conv2d(cout, cout, 3, 1, 1, bias=False)
        self.equal = cin == cout
        self.convShortcut = None if self.equal else nn.Conv2d(
            cin, cout, 1, stride, bias=False)

    def forward(self, x):
        if self.equal:
            out = F.relu(self.bn1(x))
        else:
            x = F.relu(self.bn1(x))
            out = x
        out = self.conv2(F.relu(self.bn2(self.conv1(out))))
        return out + (x if self.equal else self.convShortcut(x))


class ZSKTStage(nn.Module):

    def __init__(self, n, cin, cout, stride):
        super().__init__()
        self.layer = nn.Sequential(*[
            ZSKTBlock(cin if i == 0 else cout, cout, stride if i == 0 else 1)
            for i in range(n)
        ])

    def forward(self, x):
        return self.layer(x)


class ZSKTWideResNet(nn.Module):

    def __init__(self, depth, k, num_classes):
        super().__init__()
        n = (depth - 4) // 6
        self.conv1 = nn.Conv2d(3, 16, 3, 1, 1, bias=False)
        self.block1 = ZSKTStage(n, 16, 16 * k, 1)
        self.block2 = ZSKTStage(n, 16 * k, 32 * k, 2)
        self.block3 = ZSKTStage(n, 32 * k, 64 * k, 2)
        self.bn1 = nn.BatchNorm2d(64 * k)
        self.fc = nn.Linear(64 * k, num_classes)

    def forward(self, x):
        out = self.block3(self.block2(self.block1(self.conv1(x))))
        out = F.avg_pool2d(F.relu(self.bn1(out)), 8)
        return self.fc(out.flatten(1))


class RepDistillerVGG(nn.Module):
    """RepDistiller ``vgg*_bn``: five conv-bn-relu blocks without their last
    relu, max-pools after blocks 0-2 (and 3 at 64px), adaptive pool,
    ``classifier``."""
    CFG = {
        8: [[64], [128], [256], [512], [512]],
        11: [[64], [128], [256, 256], [512, 512], [512, 512]],
        13: [[64, 64], [128, 128], [256, 256], [512, 512], [512, 512]],
    }

    def __init__(self, depth, num_classes):
        super().__init__()
        cin = 3
        for i, widths in enumerate(self.CFG[depth]):
            layers = []
            for width in widths:
                layers += [
                    nn.Conv2d(cin, width, 3, padding=1),
                    nn.BatchNorm2d(width),
                    nn.ReLU()
                ]
                cin = width
            self.add_module(f'block{i}', nn.Sequential(*layers[:-1]))
        self.classifier = nn.Linear(512, num_classes)

    def forward(self, x):
        h = x.shape[2]
        x = F.max_pool2d(F.relu(self.block0(x)), 2)
        x = F.max_pool2d(F.relu(self.block1(x)), 2)
        x = F.max_pool2d(F.relu(self.block2(x)), 2)
        x = F.relu(self.block3(x))
        if h == 64:
            x = F.max_pool2d(x, 2)
        x = F.adaptive_avg_pool2d(F.relu(self.block4(x)), 1)
        return self.classifier(x.flatten(1))


def _conv_bn_relu(cin, cout, k, stride=1, groups=1):
    return [
        nn.Conv2d(cin, cout, k, stride, k // 2, groups=groups, bias=False),
        nn.BatchNorm2d(cout),
        nn.ReLU()
    ]


class RepDistillerInvertedResidual(nn.Module):

    def __init__(self, cin, cout, stride, t):
        super().__init__()
        self.residual = stride == 1 and cin == cout
        self.conv = nn.Sequential(
            *_conv_bn_relu(cin, cin * t, 1),
            *_conv_bn_relu(cin * t, cin * t, 3, stride, groups=cin * t),
            nn.Conv2d(cin * t, cout, 1, bias=False), nn.BatchNorm2d(cout))

    def forward(self, x):
        return x + self.conv(x) if self.residual else self.conv(x)


class RepDistillerMobileNetV2(nn.Module):
    """RepDistiller ``mobile_half`` (T=6, width 0.5)."""

    def __init__(self, num_classes, T=6, w=0.5):
        super().__init__()
        setting = [[1, 16, 1, 1], [T, 24, 2, 1], [T, 32, 3, 2],
                   [T, 64, 4, 2], [T, 96, 3, 1], [T, 160, 3, 2],
                   [T, 320, 1, 1]]
        cin = int(32 * w)
        self.conv1 = nn.Sequential(*_conv_bn_relu(3, cin, 3, 2))
        self.blocks = nn.ModuleList()
        for t, c, n, s in setting:
            layers = []
            for i in range(n):
                layers.append(
                    RepDistillerInvertedResidual(cin, int(c * w),
                                                 s if i == 0 else 1, t))
                cin = int(c * w)
            self.blocks.append(nn.Sequential(*layers))
        last = int(1280 * w) if w > 1.0 else 1280
        self.conv2 = nn.Sequential(*_conv_bn_relu(cin, last, 1))
        self.classifier = nn.Sequential(nn.Linear(last, num_classes))

    def forward(self, x):
        x = self.conv1(x)
        for stage in self.blocks:
            x = stage(x)
        x = F.avg_pool2d(self.conv2(x), 2, ceil_mode=True)
        return self.classifier(x.flatten(1))


class DAFLLeNet5(nn.Module):
    """DAFL / DFAD LeNet-5 (``conv1..conv3, fc1, fc2``)."""

    def __init__(self, num_classes, width=1.0):
        super().__init__()
        c1, c2, c3, c4 = (int(c * width) for c in (6, 16, 120, 84))
        self.conv1 = nn.Conv2d(1, c1, 5)
        self.conv2 = nn.Conv2d(c1, c2, 5)
        self.conv3 = nn.Conv2d(c2, c3, 5)
        self.fc1 = nn.Linear(c3, c4)
        self.fc2 = nn.Linear(c4, num_classes)

    def forward(self, x):
        x = F.max_pool2d(F.relu(self.conv1(x)), 2)
        x = F.max_pool2d(F.relu(self.conv2(x)), 2)
        x = F.relu(self.conv3(x)).flatten(1)
        return self.fc2(F.relu(self.fc1(x)))


class FastLeNet5(nn.Module):
    """Fast / CMI LeNet-5 (``features`` and ``fc`` Sequentials)."""

    def __init__(self, num_classes, width=1.0):
        super().__init__()
        c1, c2, c3, c4 = (int(c * width) for c in (6, 16, 120, 84))
        self.features = nn.Sequential(
            nn.Conv2d(1, c1, 5), nn.ReLU(), nn.MaxPool2d(2),
            nn.Conv2d(c1, c2, 5), nn.ReLU(), nn.MaxPool2d(2),
            nn.Conv2d(c2, c3, 5), nn.ReLU())
        self.fc = nn.Sequential(
            nn.Linear(c3, c4), nn.ReLU(), nn.Linear(c4, num_classes))

    def forward(self, x):
        return self.fc(self.features(x).flatten(1))


def randomize(model, seed=0):
    """Random weights *and* BN statistics, so that a wrong mapping of any
    tensor changes the outputs."""
    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, tensor in model.state_dict().items():
            if name.endswith('num_batches_tracked'):
                tensor.fill_(7)
            elif name.endswith('running_var'):
                tensor.copy_(torch.rand(tensor.shape, generator=generator)
                             + 0.5)
            elif name.endswith(('running_mean', 'bias')):
                tensor.copy_(0.2 * torch.randn(
                    tensor.shape, generator=generator))
            elif name.endswith('weight') and tensor.dim() == 1:
                tensor.copy_(1 + 0.2 * torch.randn(
                    tensor.shape, generator=generator))
            else:
                fan_in = tensor[0].numel()
                tensor.copy_(
                    torch.randn(tensor.shape, generator=generator) *
                    (2 / fan_in)**0.5)
    return model.eval()


# arch, num_classes, input size, reference factory, --source, container
CASES = [
    ('resnet18', 10, 32, lambda n: DAFLResNet((2, 2, 2, 2), n), 'dfad',
     'plain'),
    ('resnet34', 100, 32, lambda n: DAFLResNet((3, 4, 6, 3), n), 'cmi',
     'state_dict'),
    ('resnet18', 200, 64,
     lambda n: DAFLResNet((2, 2, 2, 2), n, fixed_pool=False), 'nayer',
     'state_dict'),
    ('resnet34', 200, 64,
     lambda n: torchvision_cifar_resnet(34, n, conv1_bias=True), 'tadfkd',
     'data_parallel'),
    ('resnet18', 200, 64, lambda n: torchvision_cifar_resnet(18, n), 'auto',
     'plain'),
    ('wrn16_1', 10, 32, lambda n: ZSKTWideResNet(16, 1, n), 'zskt', 'plain'),
    ('wrn16_2', 100, 32, lambda n: ZSKTWideResNet(16, 2, n), 'auto',
     'state_dict'),
    ('wrn40_1', 10, 32, lambda n: ZSKTWideResNet(40, 1, n), 'cmi',
     'state_dict'),
    ('wrn40_2', 100, 32, lambda n: ZSKTWideResNet(40, 2, n), 'fast',
     'state_dict'),
    ('vgg8', 100, 32, lambda n: RepDistillerVGG(8, n), 'repdistiller',
     'model'),
    ('vgg11', 10, 32, lambda n: RepDistillerVGG(11, n), 'cmi', 'state_dict'),
    ('vgg13', 100, 64, lambda n: RepDistillerVGG(13, n), 'auto',
     'state_dict'),
    ('mobilenetv2', 100, 32, lambda n: RepDistillerMobileNetV2(n), 'auto',
     'plain'),
    ('mobilenetv2_tv', 100, 32,
     lambda n: torchvision.models.mobilenet_v2(num_classes=n), 'gapssg',
     'state_dict'),
    ('lenet5', 10, 32, lambda n: DAFLLeNet5(n), 'dafl', 'plain'),
    ('lenet5_half', 10, 32, lambda n: DAFLLeNet5(n, 0.5), 'auto', 'plain'),
    ('lenet5', 10, 32, lambda n: FastLeNet5(n), 'fast', 'state_dict'),
]
CASE_IDS = [f'{c[0]}-{c[1]}-{c[4]}' for c in CASES]
EXPECTED_LAYOUT = {
    DAFLResNet: 'dafl_resnet',
    ZSKTWideResNet: 'zskt_wrn',
    RepDistillerVGG: 'repdistiller_vgg',
    RepDistillerMobileNetV2: 'repdistiller_mobilenetv2',
    torchvision.models.ResNet: 'torchvision_resnet',
    torchvision.models.MobileNetV2: 'torchvision_mobilenetv2',
    DAFLLeNet5: 'dafl_lenet',
    FastLeNet5: 'fast_lenet',
}


def wrap(state_dict, container):
    if container == 'plain':
        return state_dict
    if container == 'data_parallel':
        return {'module.' + k: v for k, v in state_dict.items()}
    # Fast/CMI also store the epoch, accuracy and optimiser state
    return {container: state_dict, 'epoch': 199, 'best_acc1': 95.7}


def assert_same_outputs(reference, model, size, channels):
    """Same logits in float64, where only rounding differs (random deep
    networks reach logits in the thousands, too large for float32
    tolerances)."""
    x = torch.randn(2, channels, size, size, dtype=torch.float64,
                    generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        expected = reference.double().eval()(x)
        actual = model.double().eval()(x, mode='tensor')
    scale = expected.abs().max().item()
    torch.testing.assert_close(
        actual, expected, rtol=1e-9, atol=1e-9 * scale)


@pytest.mark.parametrize(
    'arch,num_classes,size,make_reference,source,container',
    CASES,
    ids=CASE_IDS)
def test_converts_reference_layout_exactly(tmp_path, arch, num_classes, size,
                                           make_reference, source,
                                           container):
    reference = randomize(make_reference(num_classes))
    src = tmp_path / 'reference.pth'
    torch.save(wrap(reference.state_dict(), container), src)

    conversion = convert_teacher_state_dict(
        load_reference_checkpoint(str(src)), arch, source=source)
    assert conversion.layout == EXPECTED_LAYOUT[type(reference)]
    assert conversion.num_classes == num_classes

    model = build_teacher_model(arch, num_classes)
    model.load_state_dict(conversion.state_dict, strict=True)
    head_weight = [
        v for k, v in reference.state_dict().items()
        if v.dim() == 2 and v.shape[0] == num_classes
    ][-1]
    assert torch.equal(model.head.fc.weight, head_weight)
    channels = TEACHER_ARCHS[arch].input_channels
    assert_same_outputs(reference, model, size, channels)
    if isinstance(reference, torchvision.models.ResNet) and \
            reference.conv1.bias is not None:
        assert any('conv1.bias' in note for note in conversion.notes)

    # the written file round-trips through mmdfkd's safe teacher loading
    final = save_converted_teacher(conversion, str(tmp_path / 'out.pth'),
                                   source_file=str(src))
    assert re.fullmatch(r'out-[0-9a-f]{8}\.pth', os.path.basename(final))
    assert sha256_of_file(final).startswith(final[-12:-4])
    fresh = build_teacher_model(arch, num_classes)
    load_teacher_weights(fresh, final)
    assert_same_outputs(reference, fresh, size, channels)
    meta = load_checkpoint_file(final)['meta']
    assert meta['arch'] == arch and meta['num_classes'] == num_classes
    assert meta['source_sha256'] == sha256_of_file(str(src))
    assert sorted(os.listdir(tmp_path)) == sorted(
        ['reference.pth', os.path.basename(final)])


def test_mmpretrain_layout_round_trip(tmp_path):
    """Already-converted (mmpretrain-layout) checkpoints are accepted and
    checked the same way."""
    reference = randomize(ZSKTWideResNet(16, 1, 10))
    first = convert_teacher_state_dict(reference.state_dict(), 'wrn16_1')
    again = convert_teacher_state_dict(first.state_dict, 'wrn16_1',
                                       source='mmpretrain')
    assert again.layout == 'mmpretrain'
    assert all(
        torch.equal(first.state_dict[k], again.state_dict[k])
        for k in first.state_dict)


def test_old_checkpoints_without_bn_counters():
    state_dict = randomize(ZSKTWideResNet(16, 1, 10)).state_dict()
    state_dict = {
        k: v
        for k, v in state_dict.items() if not k.endswith('num_batches_tracked')
    }
    conversion = convert_teacher_state_dict(state_dict, 'wrn16_1')
    assert any('num_batches_tracked' in note for note in conversion.notes)
    # only *all* counters missing is an old format; one missing is an error
    full = randomize(ZSKTWideResNet(16, 1, 10)).state_dict()
    del full['block1.layer.0.bn1.num_batches_tracked']
    with pytest.raises(TeacherConversionError, match='missing keys \\(1\\)'):
        convert_teacher_state_dict(full, 'wrn16_1')


def reference_resnet18_state():
    return randomize(DAFLResNet((2, 2, 2, 2), 10)).state_dict()


@pytest.mark.parametrize('mutate,kwargs,message', [
    (lambda sd: sd, dict(arch='resnet34'), 'missing keys'),
    (lambda sd: sd, dict(arch='resnet18', num_classes=100),
     'wrong number of classes: the checkpoint head has 10 outputs'),
    (lambda sd: {k: v for k, v in sd.items() if k != 'layer3.1.bn2.bias'},
     dict(arch='resnet18'),
     'missing keys \\(1\\): backbone.layer3.1.bn2.bias'),
    (lambda sd: dict(sd, extra=torch.zeros(1)), dict(arch='resnet18'),
     'unexpected keys \\(1\\): extra'),
    (lambda sd: dict(sd, **{'layer1.0.conv1.weight': torch.zeros(64, 64, 1,
                                                                  1)}),
     dict(arch='resnet18'), 'shape mismatches \\(1\\)'),
    (lambda sd: sd, dict(arch='resnet18', source='zskt'),
     'have none of the key layouts'),
    (lambda sd: sd, dict(arch='wrn40_2'), 'not a complete wrn40_2'),
])
def test_refuses_incomplete_or_mismatched(mutate, kwargs, message):
    with pytest.raises(TeacherConversionError, match=message):
        convert_teacher_state_dict(mutate(reference_resnet18_state()),
                                   **kwargs)


def test_refuses_wider_wrn_and_unpatched_torchvision():
    wrn40_2 = randomize(ZSKTWideResNet(40, 2, 10)).state_dict()
    with pytest.raises(TeacherConversionError, match='shape mismatches'):
        convert_teacher_state_dict(wrn40_2, 'wrn40_1')
    imagenet_stem = torchvision.models.resnet18(num_classes=10).state_dict()
    with pytest.raises(TeacherConversionError,
                       match=r'backbone.conv1.weight: checkpoint '
                       r'\(64, 3, 7, 7\) vs model \(64, 3, 3, 3\)'):
        convert_teacher_state_dict(imagenet_stem, 'resnet18')


def test_refuses_non_state_dicts(tmp_path):
    src = tmp_path / 'not_weights.pth'
    torch.save({'epoch': 3, 'acc': 0.5}, src)
    with pytest.raises(TeacherConversionError, match='holds no state dict'):
        load_reference_checkpoint(str(src))
    src = tmp_path / 'truncated.pth'
    torch.save(reference_resnet18_state(), src)
    src.write_bytes(src.read_bytes()[:1000])
    with pytest.raises(CorruptCheckpointError):
        load_reference_checkpoint(str(src))


def test_hashed_names():
    digest = 'ab' * 32
    assert hashed_checkpoint_path('a/cifar10_resnet34.pth', digest) == \
        'a/cifar10_resnet34-abababab.pth'
    assert hashed_checkpoint_path('a/teacher', digest) == \
        'a/teacher-abababab.pth'


def test_refuses_a_name_that_hides_the_hash(tmp_path):
    conversion = convert_teacher_state_dict(
        randomize(DAFLLeNet5(10)).state_dict(), 'lenet5')
    with pytest.raises(TeacherConversionError, match='another'):
        save_converted_teacher(conversion,
                               str(tmp_path / 'lenet-deadbeef.v2.pth'))
    assert os.listdir(tmp_path) == []


def test_tool_converts_and_refuses(tmp_path):
    reference = randomize(ZSKTWideResNet(16, 1, 100))
    src = tmp_path / 'cifar100_wrn16_1.pth'
    torch.save({'state_dict': reference.state_dict()}, src)
    out_dir = tmp_path / 'converted'
    out_dir.mkdir()

    proc = run_tool([
        'tools/convert_teacher.py',
        str(src),
        str(out_dir), '--arch', 'wrn16_1', '--source', 'cmi'
    ])
    final = proc.stdout.strip().splitlines()[-1]
    assert re.fullmatch(r'cifar100_wrn16_1-[0-9a-f]{8}\.pth',
                        os.path.basename(final))
    assert os.path.dirname(final) == str(out_dir)
    model = build_teacher_model('wrn16_1', 100)
    load_teacher_weights(model, final)
    assert_same_outputs(reference, model, 32, 3)

    # wrong arch: refused, exit status 1, nothing written
    refused_dst = tmp_path / 'refused' / 'wrn40_2.pth'
    proc = run_tool([
        'tools/convert_teacher.py',
        str(src),
        str(refused_dst), '--arch', 'wrn40_2'
    ],
                    check=False)
    assert proc.returncode == 1
    assert 'refused, nothing written' in proc.stderr
    assert 'not a complete wrn40_2' in proc.stderr
    assert not (tmp_path / 'refused').exists()
    assert os.listdir(out_dir) == [os.path.basename(final)]
