"""The coupled generator of CPNet: a generator built as a mirror image of
the teacher, block by block, at the teacher's BatchNorm layers."""
import math
from collections.abc import Sequence
from typing import NamedTuple

import torch
from mmengine.model import BaseModel, BaseModule
from torch import nn
from torch.nn.modules.batchnorm import _BatchNorm

from mmdfkd.registry import MODELS

from ..utils import build_classifier, module_mode
from .noisy_layer import NoisyLinear
from .noisy_layer_generator import load_label_embeddings


class CouplingNode(NamedTuple):
    """A teacher BatchNorm layer that a generator block mirrors, with the
    shape (C, H, W) of its input for the generator's image size."""
    name: str
    channels: int
    height: int
    width: int


@torch.no_grad()
def trace_bn_inputs(model: nn.Module,
                    input_shape: Sequence[int]) -> list[CouplingNode]:
    """Every BatchNorm layer of ``model`` that sees a 4-D input, in the
    order a forward pass of a (2, *input_shape) batch calls them, with the
    shape of that input (first call only). ``model`` runs in eval mode and
    its modes are restored; mmengine models run with ``mode='tensor'``."""
    calls: dict[str, CouplingNode] = {}
    handles = []

    def record(name):

        def hook(module, inputs, outputs):
            x = inputs[0]
            if x.dim() == 4 and name not in calls:
                calls[name] = CouplingNode(name, *x.shape[1:])

        return hook

    for name, module in model.named_modules():
        if isinstance(module, _BatchNorm):
            handles.append(module.register_forward_hook(record(name)))
    try:
        param = next(model.parameters(), None)
        x = torch.zeros(2, *input_shape,
                        device=param.device if param is not None else None)
        with module_mode(model, False):
            if isinstance(model, BaseModel):
                model(x, mode='tensor')
            else:
                model(x)
    finally:
        for handle in handles:
            handle.remove()
    return list(calls.values())


def select_coupling_nodes(bn_inputs: Sequence[CouplingNode],
                          num_blocks: int) -> list[CouplingNode]:
    """CPNet's BN nodes of any teacher, deepest first.

    ``bn_inputs`` are the BN layers in forward order (:func:`trace_bn_inputs`).
    A *stage* is a maximal run of consecutive layers whose inputs have the
    same spatial size, a *run* a maximal run with the same (C, H, W). The
    nodes are the last BN layer of each stage, deepest first (the features
    a stage hands to the next resolution); when a teacher has fewer stages
    than ``num_blocks``, the last layers of the runs inside the stages are
    added, then the first layer of each stage (the stage's entry), each
    shallowest first (more targets near the image, where the reference's
    only extra node lies). On the reference's teachers this gives exactly the
    reference's hand-written tables (CIFAR ResNet-34: ``layer4.2.bn2,
    layer3.5.bn2, layer2.3.bn2, layer1.2.bn2``; VGG-11: ``block4.4,
    block2.4, block1.1, block0.1``; WRN-40-2, three stages plus the
    16-channel run of the stem: ``bn1, block3.layer.0.bn1,
    block2.layer.0.bn1, block1.layer.0.bn1``); with more stages than
    blocks, the deepest ``num_blocks`` stages are used.

    Layers whose input is a single pixel (fully connected in effect, e.g.
    LeNet-5's ``conv3`` output) are not candidates: a block starting from
    a 1 x 1 map upsamples it to a constant map, so the generator could
    only make spatial structure out of the convolutions' zero padding (on
    LeNet-5 it then cannot even fit the class prior). ``bn_nodes`` of
    :class:`CoupledGenerator` can still name them.
    """
    if num_blocks < 1:
        raise ValueError(f'num_blocks must be >= 1, got {num_blocks}')
    bn_inputs = [n for n in bn_inputs if n.height * n.width > 1]

    def run_ends(key):
        return [node for node, following in zip(
            bn_inputs, [*bn_inputs[1:], None], strict=True)
                if following is None or key(following) != key(node)]

    def size(node):
        return node.height, node.width

    stage_entries = [node for node, previous in zip(
        bn_inputs, [None, *bn_inputs[:-1]], strict=True)
                     if previous is None or size(previous) != size(node)]
    tiers = (run_ends(size), run_ends(lambda n: tuple(n[1:])),
             stage_entries)
    chosen: list[str] = []
    for k, tier in enumerate(tiers):
        for node in tier[::-1] if k == 0 else tier:
            if len(chosen) < num_blocks and node.name not in chosen:
                chosen.append(node.name)
    if len(chosen) < num_blocks:
        raise ValueError(
            f'the teacher offers {len(chosen)} BN nodes for a coupled '
            f'generator ({chosen}: the first and last BN of each resolution '
            'above 1 x 1 and the last of each channel width), fewer than '
            f'num_blocks={num_blocks}; lower num_blocks or name the nodes '
            'in bn_nodes')
    return [n for n in bn_inputs[::-1] if n.name in chosen]


@MODELS.register_module()
class CoupledGenerator(BaseModule):
    """The generator of CPNet (Chen et al., "Coupling the Generator with
    Teacher for Effective Data-Free Knowledge Distillation", ICCV 2025;
    ``CoupledGenerator`` of its code), an approximate inverse of the teacher.

    It is built from the teacher's structure: n BN layers of the teacher
    (the *nodes*, deepest first, :func:`select_coupling_nodes`, or named in
    ``bn_nodes``) with input shapes (C_i, H_i, W_i) give n blocks that
    undo the teacher's stages one by one, with NAYER's noisy-layer input
    (:class:`NoisyLayerGenerator`)::

        e_y (C x E table, fixed) -> BatchNorm1d(E)
          -> K-to-1 NoisyLinear(E -> noise_dim), one layer per chunk of
             C samples (re-drawn before every synthesised batch)
          -> Linear(noise_dim -> C_0 H_0 W_0) -> BatchNorm2d(C_0)  = h_0
        block i < n-1: resize to (H_{i+1}, W_{i+1}) -> Conv3x3 C_i -> C_{i+1}
                       (no bias) -> BN -> LeakyReLU(0.2)          = h_{i+1}
        block n-1:     resize to the image size -> Conv3x3 C_{n-1} -> C_out
                       (with bias) -> Sigmoid                     = image

    The block inputs h_0 .. h_{n-1} have the shapes of the nodes' inputs;
    CPNet aligns each with the teacher's re-normalised BN input at its node
    (:class:`CoupledFeatureAlignmentLoss`; ``blocks.i`` is the module whose
    input is h_i). Resizing is nearest-neighbour to the next node's size
    (the reference's ``Upsample(scale_factor=H_{i+1} // H_i)`` when the
    sizes divide, which is the same map; any size ratio works here) and
    left out between equal sizes. Outputs lie in [0, 1]. PyTorch's default
    initialisation, as in the reference.

    Args:
        label_embeddings (str | Tensor | array | list | dict): (C, E) class
            embeddings or a file holding them
            (:func:`load_label_embeddings`).
        batch_size (int): Largest synthesis batch; sets K.
        teacher (nn.Module | dict): The teacher, or its classifier config
            (built with random weights: only its structure is read). Set
            by :class:`CPNetDistillation` from its coupled teacher.
        img_size (int): Output height and width. Defaults to 32.
        out_channels (int): Image channels. Defaults to 3.
        num_blocks (int): n, the number of coupled blocks (CPNet: 4).
            Defaults to 4.
        bn_nodes (Sequence[str], optional): Names of the teacher's BN
            layers to mirror (relative to ``teacher``, in any order);
            overrides the automatic choice and ``num_blocks``.
        noise_dim (int): Output size of the noisy layers (NAYER/CPNet
            ``le_emb_size``: 1000). Defaults to 1000.
        chunk_size (int, optional): Samples per noisy layer; defaults to the
            number of classes C.
        init_cfg (dict, optional): mmengine init config.
    """

    def __init__(self,
                 label_embeddings: str | torch.Tensor | Sequence | dict,
                 batch_size: int,
                 teacher: nn.Module | dict,
                 img_size: int = 32,
                 out_channels: int = 3,
                 num_blocks: int = 4,
                 bn_nodes: Sequence[str] | None = None,
                 noise_dim: int = 1000,
                 chunk_size: int | None = None,
                 init_cfg: dict | None = None) -> None:
        super().__init__(init_cfg)
        if batch_size < 1:
            raise ValueError(f'batch_size must be positive, got {batch_size}')
        table = load_label_embeddings(label_embeddings)
        self.register_buffer('label_embeddings', table)
        self.num_classes, self.embedding_dim = table.shape
        self.img_size = img_size
        self.out_channels = out_channels
        self.nodes = self._find_nodes(teacher, num_blocks, bn_nodes)
        chunk_size = chunk_size or self.num_classes

        first = self.nodes[0]
        self.embedding_norm = nn.BatchNorm1d(self.embedding_dim)
        self.noisy_layer = NoisyLinear(
            self.embedding_dim,
            noise_dim,
            num_layers=math.ceil(batch_size / chunk_size),
            chunk_size=chunk_size)
        self.fc = nn.Linear(noise_dim,
                            first.channels * first.height * first.width)
        self.input_norm = nn.BatchNorm2d(first.channels)
        outputs = [(n.channels, (n.height, n.width)) for n in self.nodes[1:]]
        outputs.append((out_channels, (img_size, img_size)))
        blocks, in_shape = [], (first.channels, (first.height, first.width))
        for i, (channels, size) in enumerate(outputs):
            last = i == len(outputs) - 1
            blocks.append(nn.Sequential(
                nn.Upsample(size=size, mode='nearest')
                if size != in_shape[1] else nn.Identity(),
                nn.Conv2d(in_shape[0], channels, 3, 1, 1, bias=last),
                nn.Identity() if last else nn.BatchNorm2d(channels),
                nn.Sigmoid() if last else nn.LeakyReLU(0.2, inplace=True)))
            in_shape = (channels, size)
        self.blocks = nn.ModuleList(blocks)

    def _find_nodes(self, teacher: nn.Module | dict, num_blocks: int,
                    bn_nodes: Sequence[str] | None) -> tuple[CouplingNode]:
        if not isinstance(teacher, nn.Module):
            teacher = build_classifier(teacher)
        traced = trace_bn_inputs(
            teacher, (self.out_channels, self.img_size, self.img_size))
        if not traced:
            raise ValueError(
                'the teacher has no BatchNorm layer with a 4-D input: a '
                'coupled generator mirrors the teacher at its BN layers')
        if bn_nodes is None:
            return tuple(select_coupling_nodes(traced, num_blocks))
        by_name = {n.name: n for n in traced}
        unknown = [name for name in bn_nodes if name not in by_name]
        if unknown or not bn_nodes:
            raise KeyError(
                f'bn_nodes {unknown or list(bn_nodes)} are not BN layers with '
                f'a 4-D input of the teacher; its BN layers: {list(by_name)}')
        return tuple(n for n in traced[::-1] if n.name in set(bn_nodes))

    @property
    def bn_nodes(self) -> tuple[str, ...]:
        """Names of the mirrored teacher BN layers; node i <-> h_i."""
        return tuple(n.name for n in self.nodes)

    @property
    def image_shape(self):
        return (self.out_channels, self.img_size, self.img_size)

    def forward(self,
                latents: torch.Tensor | None = None,
                targets: torch.Tensor | None = None) -> torch.Tensor:
        """Images (N, C_out, S, S) for ``targets`` (N, ); ``latents`` are
        accepted for the uniform generator interface and unused."""
        if targets is None:
            raise ValueError('CoupledGenerator generates from class labels: '
                             'pass targets')
        if targets.min() < 0 or targets.max() >= self.num_classes:
            raise ValueError(
                f'targets must lie in [0, {self.num_classes}) (the rows of '
                'the label embedding table)')
        first = self.nodes[0]
        x = self.embedding_norm(self.label_embeddings[targets])
        x = self.fc(self.noisy_layer(x))
        x = self.input_norm(x.view(len(x), first.channels, first.height,
                                   first.width))
        for block in self.blocks:
            x = block(x)
        return x
