"""Convert the DFKD research repositories' teacher checkpoints to mmdfkd.

The papers' teachers are plain PyTorch state dicts of their own networks:
Fast / CMI / NAYER / CPNet / AdaDFKD / GapSSG ship ``{dataset}_{arch}.pth``
files holding ``{'state_dict': ...}``; DAFL and DFAD save the network's
``state_dict()``; TA-DFKD's are plain state dicts saved through
``nn.DataParallel`` (``module.`` prefixes). Their key names differ from
those of an mmpretrain ``ImageClassifier`` (``backbone.*``, ``head.fc.*``).

This module holds the key-name tables of every (architecture, key layout)
pair, converts a state dict, and refuses anything that does not fill the
target model exactly: every key of the model must be produced once, with the
model's shape, and no checkpoint key may be left over. ``tools/
convert_teacher.py`` is the command-line front end.

Architectures (``--arch``), the mmdfkd model they convert to (an
``ImageClassifier`` with a ``GlobalAveragePooling`` neck unless noted and a
``LinearClsHead``) and the reference key layouts they accept:

* ``resnet18``, ``resnet34``: ``ResNet_CIFAR(depth)``, for CIFAR and for
  64x64 Tiny-ImageNet (200 classes); layouts ``dafl_resnet``,
  ``torchvision_resnet``.
* ``wrn16_1``, ``wrn16_2``, ``wrn40_1``, ``wrn40_2``:
  ``WideResNet_CIFAR(depth, widen_factor)``; layout ``zskt_wrn``.
* ``vgg8``, ``vgg11``, ``vgg13``: ``VGG_CIFAR(depth)`` (the VGG-BN the
  repositories register under these names); layout ``repdistiller_vgg``.
* ``mobilenetv2``: ``MobileNetV2_CIFAR()`` (RepDistiller's
  ``mobile_half``); layout ``repdistiller_mobilenetv2``.
* ``mobilenetv2_tv``: mmpretrain's ``MobileNetV2(widen_factor=1.0)``, i.e.
  torchvision's network, which is what the Fast/CMI/NAYER/GapSSG registries
  build for ``mobilenetv2``; layout ``torchvision_mobilenetv2``.
* ``lenet5``, ``lenet5_half``: ``DFKDLeNet5(width_multiplier, in_channels=1,
  with_bn=False)`` without neck (DAFL's LeNet has no BN); layouts
  ``dafl_lenet``, ``fast_lenet``.

Every architecture also accepts the ``mmpretrain`` layout (keys already
``backbone.*`` / ``head.*``, e.g. mmpretrain model-zoo or mmdfkd
checkpoints), which is checked the same way.
"""
import hashlib
import os
import os.path as osp
import re
import tempfile
from collections import OrderedDict
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Callable, Dict, List, Optional, Sequence, Tuple

import torch

from mmdfkd.models.backbones.resnet_cifar_notes import \
    dfkd_resnet_cifar_backbone
from mmdfkd.utils.checkpoint import (CheckpointMismatchError,
                                     _expected_hash_prefix,
                                     load_checkpoint_file)

_MAX_LISTED_KEYS = 10
# Entries under which the repositories store the weights, tried in order;
# a checkpoint without any of them must itself be a state dict.
STATE_DICT_CONTAINER_KEYS = ('state_dict', 'model_state_dict', 'model', 'net')


class TeacherConversionError(CheckpointMismatchError):
    """A reference checkpoint cannot be converted exactly."""


# --------------------------------------------------------------------------
# Target models
# --------------------------------------------------------------------------
def _classifier(backbone: dict, in_channels: int, num_classes: int,
                neck: Optional[dict]) -> dict:
    return dict(
        type='ImageClassifier',
        backbone=backbone,
        neck=neck,
        head=dict(
            type='LinearClsHead',
            num_classes=num_classes,
            in_channels=in_channels,
            loss=dict(type='CrossEntropyLoss', loss_weight=1.0),
            topk=(1, )))


@dataclass(frozen=True)
class TeacherArch:
    """An architecture the converter knows.

    Attributes:
        name (str): ``--arch`` name, the papers' registry name.
        backbone (dict): mmdfkd/mmpretrain backbone config.
        feature_channels (int): Input channels of the linear head.
        layouts (tuple[str]): Reference key layouts of this architecture
            (see :data:`KEY_LAYOUTS`), besides ``mmpretrain``.
        with_neck (bool): Whether a ``GlobalAveragePooling`` neck sits
            between backbone and head.
        input_channels (int): Image channels, for tools that run the model.
        default_num_classes (int): Head size used when neither the
            checkpoint nor the caller gives one.
    """
    name: str
    backbone: dict
    feature_channels: int
    layouts: Tuple[str, ...]
    with_neck: bool = True
    input_channels: int = 3
    default_num_classes: int = 10

    def model_config(self, num_classes: int) -> dict:
        """The ``ImageClassifier`` config with ``num_classes`` outputs."""
        neck = dict(type='GlobalAveragePooling') if self.with_neck else None
        return _classifier(
            dict(self.backbone), self.feature_channels, num_classes, neck=neck)


def _wrn(depth: int, widen_factor: int) -> TeacherArch:
    return TeacherArch(
        f'wrn{depth}_{widen_factor}',
        dict(type='WideResNet_CIFAR', depth=depth, widen_factor=widen_factor),
        64 * widen_factor, ('zskt_wrn', ))


def _vgg(depth: int) -> TeacherArch:
    return TeacherArch(f'vgg{depth}', dict(type='VGG_CIFAR', depth=depth), 512,
                       ('repdistiller_vgg', ))


def _lenet(name: str, width: float) -> TeacherArch:
    return TeacherArch(
        name,
        dict(
            type='DFKDLeNet5',
            width_multiplier=width,
            in_channels=1,
            with_bn=False),
        int(84 * width), ('dafl_lenet', 'fast_lenet'),
        with_neck=False,
        input_channels=1)


TEACHER_ARCHS: Dict[str, TeacherArch] = OrderedDict(
    (arch.name, arch) for arch in [
        TeacherArch('resnet18', dfkd_resnet_cifar_backbone(18), 512,
                    ('dafl_resnet', 'torchvision_resnet')),
        TeacherArch('resnet34', dfkd_resnet_cifar_backbone(34), 512,
                    ('dafl_resnet', 'torchvision_resnet')),
        _wrn(16, 1),
        _wrn(16, 2),
        _wrn(40, 1),
        _wrn(40, 2),
        _vgg(8),
        _vgg(11),
        _vgg(13),
        TeacherArch('mobilenetv2',
                    dict(
                        type='MobileNetV2_CIFAR',
                        widen_factor=0.5,
                        expand_ratio=6), 1280,
                    ('repdistiller_mobilenetv2', )),
        TeacherArch('mobilenetv2_tv',
                    dict(type='MobileNetV2', widen_factor=1.0), 1280,
                    ('torchvision_mobilenetv2', )),
        _lenet('lenet5', 1.0),
        _lenet('lenet5_half', 0.5),
    ])


# --------------------------------------------------------------------------
# Key layouts
# --------------------------------------------------------------------------
def _rename_by_rules(rules: Sequence[Tuple[str, str]]
                     ) -> Callable[[str], Optional[str]]:
    """Build a key renamer from ``(regex, replacement)`` rules; the first
    rule whose regex matches the whole key wins, an unmatched key maps to
    None (reported as unexpected)."""
    compiled = [(re.compile(pattern), repl) for pattern, repl in rules]

    def rename(key: str) -> Optional[str]:
        for pattern, repl in compiled:
            if pattern.fullmatch(key):
                return pattern.sub(repl, key)
        return None

    return rename


# torchvision's MobileNetV2 ``features`` index -> mmpretrain's
# ``layer<stage>.<block>``: stages of 1, 2, 3, 4, 3, 3, 1 blocks.
_TV_MOBILENETV2_BLOCKS = {}
_feature_index = 1
for _stage, _num_blocks in enumerate((1, 2, 3, 4, 3, 3, 1), start=1):
    for _block in range(_num_blocks):
        _TV_MOBILENETV2_BLOCKS[_feature_index] = f'layer{_stage}.{_block}'
        _feature_index += 1
del _feature_index, _stage, _num_blocks, _block


def _rename_torchvision_mobilenetv2(key: str) -> Optional[str]:
    """torchvision ``mobilenet_v2`` keys -> mmpretrain ``MobileNetV2``.

    ``features.0`` is the stem ConvBNReLU, ``features.1-17`` the inverted
    residuals, ``features.18`` the final 1x1 ConvBNReLU; ``classifier.1`` is
    the linear layer (``classifier.0`` is dropout). Inside a block,
    torchvision's ``conv`` is ``[ConvBNReLU(expand), ConvBNReLU(dw), conv,
    bn]`` (no expansion when t=1), mmpretrain's ``[ConvModule...]`` with the
    projection conv and BN merged into the last ConvModule.
    """
    match = re.fullmatch(r'classifier\.1\.(weight|bias)', key)
    if match:
        return f'head.fc.{match.group(1)}'
    match = re.fullmatch(r'features\.(\d+)\.(.+)', key)
    if not match:
        return None
    index, rest = int(match.group(1)), match.group(2)
    if index in (0, 18):
        module = 'conv1' if index == 0 else 'conv2'
        sub = re.fullmatch(r'([01])\.(.+)', rest)
        if not sub:
            return None
        part = 'conv' if sub.group(1) == '0' else 'bn'
        return f'backbone.{module}.{part}.{sub.group(2)}'
    if index not in _TV_MOBILENETV2_BLOCKS:
        return None
    prefix = f'backbone.{_TV_MOBILENETV2_BLOCKS[index]}.conv'
    # ConvBNReLU sub-blocks: conv.<i>.0 (conv) / conv.<i>.1 (bn)
    sub = re.fullmatch(r'conv\.(\d+)\.([01])\.(.+)', rest)
    if sub:
        part = 'conv' if sub.group(2) == '0' else 'bn'
        return f'{prefix}.{sub.group(1)}.{part}.{sub.group(3)}'
    # projection conv and its BN: conv.<n> (conv) / conv.<n+1> (bn), with
    # n = number of ConvBNReLU sub-blocks (1 when t=1, else 2)
    sub = re.fullmatch(r'conv\.(\d+)\.(.+)', rest)
    if not sub:
        return None
    position = int(sub.group(1))
    num_conv_bn_relu = 1 if index == 1 else 2
    if position == num_conv_bn_relu:
        part = 'conv'
    elif position == num_conv_bn_relu + 1:
        part = 'bn'
    else:
        return None
    return f'{prefix}.{num_conv_bn_relu}.{part}.{sub.group(2)}'


def _fold_stem_conv_bias(state_dict: 'OrderedDict[str, torch.Tensor]',
                         notes: List[str]) -> None:
    """Fold a bias of the ResNet stem conv into the BN right after it.

    ``bn1(conv1(x) + b)`` equals ``bn1'(conv1(x))`` with ``running_mean' =
    running_mean - b``: in eval mode by substitution, in train mode because
    the batch mean absorbs ``b`` and the running mean then tracks the
    shifted statistic. (TA-DFKD's Tiny-ImageNet ResNet has such a bias.)
    """
    bias = state_dict.pop('backbone.conv1.bias', None)
    if bias is None:
        return
    mean_key = 'backbone.bn1.running_mean'
    if mean_key not in state_dict or state_dict[mean_key].shape != bias.shape:
        raise TeacherConversionError(
            'the stem conv has a bias but no BN running mean of the same '
            'shape to fold it into')
    state_dict[mean_key] = state_dict[mean_key] - bias
    notes.append('folded conv1.bias into bn1.running_mean (exact: the BN '
                 'right after conv1 cancels a constant shift)')


@dataclass(frozen=True)
class KeyLayout:
    """How one family of reference checkpoints names its keys.

    Attributes:
        name (str): Layout name, recorded in the converted file's meta.
        description (str): The repositories that use it.
        rename (callable): Reference key -> mmdfkd key, or None when the
            key does not belong to this layout.
        postprocess (callable, optional): ``f(state_dict, notes)`` applied
            after renaming, for exact reparameterisations.
    """
    name: str
    description: str
    rename: Callable[[str], Optional[str]]
    postprocess: Optional[Callable] = None


KEY_LAYOUTS: Dict[str, KeyLayout] = OrderedDict(
    (layout.name, layout) for layout in [
        KeyLayout(
            'mmpretrain',
            'mmpretrain / mmdfkd ImageClassifier (backbone.*, head.*)',
            _rename_by_rules([(r'((backbone|neck|head)\..+)', r'\1')])),
        KeyLayout(
            'dafl_resnet',
            'DAFL/DFAD/Fast/CMI/NAYER/TA-DFKD CIFAR ResNet (conv1, bn1, '
            'layerN.i.shortcut.{0,1}, linear)',
            _rename_by_rules([
                (r'(layer\d\.\d+)\.shortcut\.(.+)', r'backbone.\1.downsample.'
                 r'\2'),
                (r'linear\.(weight|bias)', r'head.fc.\1'),
                (r'((conv1|bn1|layer\d)\..+)', r'backbone.\1'),
            ]), _fold_stem_conv_bias),
        KeyLayout(
            'torchvision_resnet',
            'torchvision-style ResNet with a 3x3 stride-1 stem and no '
            'max-pool (AdaDFKD Tiny-ImageNet, TA-DFKD resnet_tiny: '
            'downsample.{0,1}, fc)',
            _rename_by_rules([
                (r'fc\.(weight|bias)', r'head.fc.\1'),
                (r'((conv1|bn1|layer\d)\..+)', r'backbone.\1'),
            ]), _fold_stem_conv_bias),
        KeyLayout(
            'zskt_wrn',
            'ZSKT (polo5) Wide-ResNet as copied by Fast/CMI/NAYER/AdaDFKD '
            '(conv1, blockN.layer.i.*, bn1, fc)',
            _rename_by_rules([
                (r'fc\.(weight|bias)', r'head.fc.\1'),
                (r'((conv1|bn1|block[123])\..+)', r'backbone.\1'),
            ])),
        KeyLayout(
            'repdistiller_vgg',
            'RepDistiller VGG-BN as copied by Fast/CMI/NAYER (blockN.i, '
            'classifier)',
            _rename_by_rules([
                (r'classifier\.(weight|bias)', r'head.fc.\1'),
                (r'(block[0-4]\..+)', r'backbone.\1'),
            ])),
        KeyLayout(
            'repdistiller_mobilenetv2',
            'RepDistiller MobileNetV2 (conv1, blocks.s.i.conv.k, conv2, '
            'classifier.0)',
            _rename_by_rules([
                (r'classifier\.0\.(weight|bias)', r'head.fc.\1'),
                (r'((conv1|conv2|blocks)\..+)', r'backbone.\1'),
            ])),
        KeyLayout(
            'torchvision_mobilenetv2',
            'torchvision mobilenet_v2, the "mobilenetv2" of the Fast/CMI/'
            'NAYER/GapSSG registries (features.i, classifier.1)',
            _rename_torchvision_mobilenetv2),
        KeyLayout(
            'dafl_lenet',
            'DAFL/DFAD LeNet-5 (conv1, conv2, conv3, fc1, fc2)',
            _rename_by_rules([
                (r'(conv[123]\.(weight|bias))', r'backbone.\1'),
                (r'fc1\.(weight|bias)', r'backbone.fc.\1'),
                (r'fc2\.(weight|bias)', r'head.fc.\1'),
            ])),
        KeyLayout(
            'fast_lenet',
            'Fast/CMI LeNet-5 (features.{0,3,6}, fc.{0,2})',
            _rename_by_rules([
                (r'features\.0\.(weight|bias)', r'backbone.conv1.\1'),
                (r'features\.3\.(weight|bias)', r'backbone.conv2.\1'),
                (r'features\.6\.(weight|bias)', r'backbone.conv3.\1'),
                (r'fc\.0\.(weight|bias)', r'backbone.fc.\1'),
                (r'fc\.2\.(weight|bias)', r'head.fc.\1'),
            ])),
    ])

# ``--source``: the repository a checkpoint comes from -> the layouts its
# networks use (each architecture then keeps the ones it has).
SOURCE_LAYOUTS: Dict[str, Tuple[str, ...]] = OrderedDict([
    ('dafl', ('dafl_resnet', 'dafl_lenet')),
    ('dfad', ('dafl_resnet', 'dafl_lenet')),
    ('zskt', ('zskt_wrn', )),
    ('repdistiller', ('repdistiller_vgg', 'repdistiller_mobilenetv2',
                      'zskt_wrn')),
    ('fast', ('dafl_resnet', 'zskt_wrn', 'repdistiller_vgg',
              'torchvision_mobilenetv2', 'fast_lenet')),
    ('cmi', ('dafl_resnet', 'zskt_wrn', 'repdistiller_vgg',
             'torchvision_mobilenetv2', 'fast_lenet')),
    ('nayer', ('dafl_resnet', 'zskt_wrn', 'repdistiller_vgg',
               'torchvision_mobilenetv2', 'fast_lenet')),
    ('gapssg', ('dafl_resnet', 'zskt_wrn', 'repdistiller_vgg',
                'torchvision_mobilenetv2')),
    ('adadfkd', ('dafl_resnet', 'zskt_wrn', 'repdistiller_vgg',
                 'torchvision_resnet')),
    ('tadfkd', ('dafl_resnet', 'torchvision_resnet')),
    ('torchvision', ('torchvision_resnet', 'torchvision_mobilenetv2')),
    ('mmpretrain', ('mmpretrain', )),
])
SOURCES = ('auto', ) + tuple(SOURCE_LAYOUTS)


# --------------------------------------------------------------------------
# Conversion
# --------------------------------------------------------------------------
@dataclass
class TeacherConversion:
    """The result of :func:`convert_teacher_state_dict`.

    Attributes:
        state_dict (OrderedDict): Weights with the target model's keys, in
            its order.
        arch (str): Architecture name.
        layout (str): Key layout the checkpoint was read with.
        num_classes (int): Number of classes of the head.
        model_config (dict): The target ``ImageClassifier`` config.
        notes (list[str]): Exact transformations applied besides renaming.
    """
    state_dict: 'OrderedDict[str, torch.Tensor]'
    arch: str
    layout: str
    num_classes: int
    model_config: dict
    notes: List[str] = field(default_factory=list)


@dataclass
class _Attempt:
    """One layout tried on a checkpoint, with what did not fit."""
    layout: str
    state_dict: 'OrderedDict[str, torch.Tensor]'
    notes: List[str]
    missing: List[str]
    unexpected: List[str]
    shape_mismatches: List[str]
    errors: List[str]

    @property
    def num_problems(self) -> int:
        return (len(self.errors) + len(self.missing) + len(self.unexpected) +
                len(self.shape_mismatches))


def _format_keys(keys: Sequence[str]) -> str:
    listed = ', '.join(keys[:_MAX_LISTED_KEYS])
    hidden = len(keys) - _MAX_LISTED_KEYS
    return listed + (f', ... and {hidden} more' if hidden > 0 else '')


def strip_data_parallel_prefix(
        state_dict: Mapping) -> 'OrderedDict[str, torch.Tensor]':
    """Remove the ``module.`` prefix that ``nn.DataParallel`` and DDP add.

    Raises:
        TeacherConversionError: If stripping would merge two keys.
    """
    stripped = OrderedDict()
    for key, value in state_dict.items():
        new_key = key[len('module.'):] if key.startswith('module.') else key
        if new_key in stripped:
            raise TeacherConversionError(
                f'both {key!r} and {new_key!r} are in the checkpoint')
        stripped[new_key] = value
    return stripped


def extract_state_dict(checkpoint: object,
                       filename: str = 'checkpoint') -> Mapping:
    """Find the weights of a loaded reference checkpoint.

    Tries :data:`STATE_DICT_CONTAINER_KEYS` in order, then the checkpoint
    itself; every value must be a tensor.

    Raises:
        TeacherConversionError: If no state dict of tensors is found.
    """
    if not isinstance(checkpoint, Mapping):
        raise TeacherConversionError(
            f'{filename} holds a {type(checkpoint).__name__}, not a state '
            'dict')
    state_dict = checkpoint
    for key in STATE_DICT_CONTAINER_KEYS:
        if isinstance(checkpoint.get(key), Mapping):
            state_dict = checkpoint[key]
            break
    non_tensors = [
        str(key) for key, value in state_dict.items()
        if not isinstance(value, torch.Tensor)
    ]
    if state_dict is checkpoint and (not checkpoint or non_tensors):
        raise TeacherConversionError(
            f'{filename} holds no state dict: expected an entry in '
            f'{list(STATE_DICT_CONTAINER_KEYS)} or a plain dict of tensors, '
            f'found keys {_format_keys(sorted(map(str, checkpoint)))}')
    if not state_dict or non_tensors:
        raise TeacherConversionError(
            f'the state dict of {filename} is empty or has non-tensor '
            f'values (under {_format_keys(non_tensors)})')
    return state_dict


def build_teacher_model(arch: str, num_classes: int) -> torch.nn.Module:
    """Build the mmdfkd ``ImageClassifier`` of ``arch``."""
    from mmdfkd.models.utils import build_classifier
    from mmdfkd.utils.setup_env import register_all_modules
    register_all_modules(init_default_scope=False)
    return build_classifier(get_teacher_arch(arch).model_config(num_classes))


def get_teacher_arch(arch: str) -> TeacherArch:
    if arch not in TEACHER_ARCHS:
        raise ValueError(f'unknown arch {arch!r}; known: '
                         f'{", ".join(TEACHER_ARCHS)}')
    return TEACHER_ARCHS[arch]


def candidate_layouts(arch: str, source: str = 'auto') -> List[str]:
    """Layouts to try for ``arch`` checkpoints from ``source``."""
    arch_layouts = get_teacher_arch(arch).layouts + ('mmpretrain', )
    if source == 'auto':
        return list(arch_layouts)
    if source not in SOURCE_LAYOUTS:
        raise ValueError(f'unknown source {source!r}; known: '
                         f'{", ".join(SOURCES)}')
    layouts = [
        layout for layout in arch_layouts if layout in SOURCE_LAYOUTS[source]
    ]
    if not layouts:
        raise TeacherConversionError(
            f'{source} checkpoints have none of the key layouts of {arch} '
            f'({", ".join(arch_layouts)}); use --source auto or another '
            'arch')
    return layouts


def _rename(state_dict: Mapping,
            layout: KeyLayout) -> Tuple['OrderedDict[str, torch.Tensor]',
                                        List[str], List[str]]:
    """Rename with ``layout``; return (renamed, unrenamable keys, notes)."""
    renamed = OrderedDict()
    unexpected = []
    for key, value in state_dict.items():
        new_key = layout.rename(key)
        if new_key is None:
            unexpected.append(key)
        elif new_key in renamed:
            raise TeacherConversionError(
                f'layout {layout.name} maps two keys to {new_key!r}')
        else:
            renamed[new_key] = value
    notes = []
    if layout.postprocess is not None:
        layout.postprocess(renamed, notes)
    return renamed, unexpected, notes


def _infer_num_classes(renamed: Mapping) -> Optional[int]:
    weight = renamed.get('head.fc.weight')
    if isinstance(weight, torch.Tensor) and weight.dim() == 2:
        return int(weight.shape[0])
    return None


def _compare(renamed: 'OrderedDict[str, torch.Tensor]',
             unrenamable: List[str], target: Mapping, notes: List[str]
             ) -> Tuple[List[str], List[str], List[str]]:
    missing = [key for key in target if key not in renamed]
    # Checkpoints older than PyTorch 0.4.1 have no BN batch counters; they
    # only matter for BN with momentum=None, so they start from 0.
    counters = [k for k in target if k.endswith('.num_batches_tracked')]
    if counters and not any(k in renamed for k in counters) and set(
            counters) <= set(missing):
        for key in counters:
            renamed[key] = torch.zeros_like(target[key])
        missing = [k for k in missing if k not in counters]
        notes.append(f'set {len(counters)} missing BN num_batches_tracked '
                     'counters to 0 (checkpoint predates PyTorch 0.4.1)')
    unexpected = unrenamable + [key for key in renamed if key not in target]
    shape_mismatches = [
        f'{key}: checkpoint {tuple(renamed[key].shape)} vs model '
        f'{tuple(target[key].shape)}' for key in target
        if key in renamed and renamed[key].shape != target[key].shape
    ]
    return missing, unexpected, shape_mismatches


def convert_teacher_state_dict(state_dict: Mapping,
                               arch: str,
                               source: str = 'auto',
                               num_classes: Optional[int] = None
                               ) -> TeacherConversion:
    """Convert a reference state dict to the mmdfkd model of ``arch``.

    Every candidate layout (:func:`candidate_layouts`) is tried; the one
    that fills the target model exactly wins. The number of classes is read
    from the checkpoint's head unless given.

    Args:
        state_dict (Mapping): Reference weights (``module.`` prefixes are
            removed).
        arch (str): A key of :data:`TEACHER_ARCHS`.
        source (str): ``'auto'`` or a key of :data:`SOURCE_LAYOUTS`.
        num_classes (int, optional): Expected number of classes; a
            checkpoint with another head is refused.

    Returns:
        TeacherConversion: The converted weights and what was done.

    Raises:
        TeacherConversionError: If no layout fills the model exactly (the
            closest layout's missing / unexpected / mis-shaped keys are
            listed), or the number of classes differs from ``num_classes``.
        ValueError: For an unknown arch or source.
    """
    spec = get_teacher_arch(arch)
    layouts = candidate_layouts(arch, source)
    state_dict = strip_data_parallel_prefix(state_dict)

    targets: Dict[int, Mapping] = {}
    attempts: List[_Attempt] = []
    for name in layouts:
        try:
            renamed, unrenamable, notes = _rename(state_dict,
                                                  KEY_LAYOUTS[name])
        except TeacherConversionError as error:
            attempts.append(
                _Attempt(name, OrderedDict(), [], [], [], [], [str(error)]))
            continue
        found_classes = _infer_num_classes(renamed)
        classes = num_classes or found_classes or spec.default_num_classes
        if classes not in targets:
            targets[classes] = build_teacher_model(arch, classes).state_dict()
        target = targets[classes]
        missing, unexpected, shapes = _compare(renamed, unrenamable, target,
                                               notes)
        errors = []
        if found_classes is not None and found_classes != classes:
            errors.append(f'wrong number of classes: the checkpoint head has '
                          f'{found_classes} outputs, --num-classes is '
                          f'{classes}')
        attempt = _Attempt(name, renamed, notes, missing, unexpected, shapes,
                           errors)
        if attempt.num_problems == 0:
            ordered = OrderedDict(
                (key, renamed[key].detach().clone().contiguous())
                for key in target)
            return TeacherConversion(ordered, arch, name, classes,
                                     spec.model_config(classes), notes)
        attempts.append(attempt)

    best = min(attempts, key=lambda a: a.num_problems)
    problems = list(best.errors)
    if best.missing:
        problems.append(f'missing keys ({len(best.missing)}): '
                        f'{_format_keys(best.missing)}')
    if best.unexpected:
        problems.append(f'unexpected keys ({len(best.unexpected)}): '
                        f'{_format_keys(best.unexpected)}')
    if best.shape_mismatches:
        problems.append(f'shape mismatches ({len(best.shape_mismatches)}): '
                        f'{_format_keys(best.shape_mismatches)}')
    raise TeacherConversionError(
        f'the checkpoint is not a complete {arch} (layouts tried: '
        f'{", ".join(layouts)}; closest: {best.layout}):\n  ' +
        '\n  '.join(problems))


# --------------------------------------------------------------------------
# Files
# --------------------------------------------------------------------------
def sha256_of_file(path: str) -> str:
    sha256 = hashlib.sha256()
    with open(path, 'rb') as f:
        for chunk in iter(lambda: f.read(1 << 20), b''):
            sha256.update(chunk)
    return sha256.hexdigest()


def load_reference_checkpoint(path: str) -> Mapping:
    """Load a reference checkpoint safely (``weights_only``) and return its
    state dict (see :func:`extract_state_dict`)."""
    checkpoint = load_checkpoint_file(path, map_location='cpu')
    return extract_state_dict(checkpoint, path)


def hashed_checkpoint_path(dst: str, sha256: str) -> str:
    """``dst`` with ``-<sha256[:8]>`` before its extension (``.pth`` when it
    has none), the convention :mod:`mmdfkd.utils.checkpoint` verifies."""
    root, ext = osp.splitext(dst)
    if ext not in ('.pth', '.pt', '.ckpt'):
        root, ext = dst, '.pth'
    return f'{root}-{sha256[:8]}{ext}'


def save_converted_teacher(conversion: TeacherConversion,
                           dst: str,
                           source_file: Optional[str] = None) -> str:
    """Write ``{'state_dict', 'meta'}`` atomically and return its path.

    The file is written to a temporary name beside ``dst``, read back with
    ``weights_only`` and loaded strictly into a fresh model, hashed, and
    only then renamed to ``dst`` with the hash prefix inserted
    (:func:`hashed_checkpoint_path`). On any failure nothing is left at the
    destination.

    Args:
        conversion (TeacherConversion): Result of
            :func:`convert_teacher_state_dict`.
        dst (str): Destination path; its directory is created.
        source_file (str, optional): Reference file, recorded in the meta
            with its sha256.

    Returns:
        str: The final path, ``<dst stem>-<sha256[:8]><ext>``.
    """
    meta = dict(
        arch=conversion.arch,
        source_layout=conversion.layout,
        num_classes=conversion.num_classes,
        model=conversion.model_config,
        notes=list(conversion.notes),
        converter='mmdfkd tools/convert_teacher.py')
    if source_file is not None:
        meta.update(
            source_file=osp.basename(source_file),
            source_sha256=sha256_of_file(source_file))
    out_dir = osp.dirname(osp.abspath(dst))
    os.makedirs(out_dir, exist_ok=True)
    fd, tmp_path = tempfile.mkstemp(
        prefix='.' + osp.basename(dst) + '.', suffix='.tmp', dir=out_dir)
    os.close(fd)
    try:
        torch.save({'state_dict': conversion.state_dict, 'meta': meta},
                   tmp_path)
        # the written file must load safely and fill the model exactly
        reloaded = extract_state_dict(
            load_checkpoint_file(tmp_path, check_hash=False), tmp_path)
        model = build_teacher_model(conversion.arch, conversion.num_classes)
        model.load_state_dict(reloaded, strict=True)
        digest = sha256_of_file(tmp_path)
        final_path = hashed_checkpoint_path(dst, digest)
        if _expected_hash_prefix(final_path) != digest[:8]:
            raise TeacherConversionError(
                f'{final_path}: the name holds another "-<hex>." run before '
                'the hash, which checkpoint loading would take as the hash; '
                'choose a destination name without one')
        os.replace(tmp_path, final_path)
    except BaseException:
        if osp.exists(tmp_path):
            os.remove(tmp_path)
        raise
    return final_path
