"""The CIFAR / Tiny-ImageNet ResNet-18/34 of the DFKD papers is mmpretrain's
``ResNet_CIFAR``; this module says why, and where the two differ.

Reference networks
------------------
* DAFL (Chen et al., ICCV 2019, ``huawei-noah/Data-Efficient-Model-
  Compression`` ``DAFL/resnet.py``), copied by DFAD (``network/resnet_8x.py``,
  ``ResNet18_8x`` / ``ResNet34_8x``), Fast / CMI / NAYER / CPNet / AdaDFKD
  (``datafree/models/classifiers/resnet.py``) and TA-DFKD (``networks/
  resnet.py``); the same network as kuangliu/pytorch-cifar's ResNet::

      conv3x3 3->64 stride 1 (no bias), BN, ReLU      -- no max-pool
      layer1..layer4: BasicBlocks, 64-128-256-512, first strides 1-2-2-2,
                      (2,2,2,2) for ResNet-18, (3,4,6,3) for ResNet-34
      BasicBlock: conv3x3-BN-ReLU-conv3x3-BN, + shortcut, ReLU;
                  shortcut = 1x1 conv (stride) + BN when the shape changes
      pool, linear 512 -> num_classes

* Tiny-ImageNet (64x64, 200 classes): NAYER/CPNet run the class above with
  adaptive pooling; TA-DFKD's ``networks/resnet_tiny.py`` and AdaDFKD's
  patched torchvision ResNets (``conv1`` replaced by a 3x3 stride-1 conv,
  ``maxpool`` removed, adaptive average pool, ``fc`` -> 200) are the same
  network with torchvision's names.

``ResNet_CIFAR(depth=18|34)`` of mmpretrain is exactly this network (3x3
stride-1 stem without bias, no max-pool, ``BasicBlock`` with conv-BN-ReLU-
conv-BN + shortcut then ReLU, 1x1 conv + BN projection shortcut):
``tests/test_backbones_cifar.py`` checks the structure, and
``tests/test_convert_teacher.py`` loads the weights of DAFL-layout and
patched-torchvision ResNets and gets the same outputs. A classifier is ``ImageClassifier(backbone=ResNet_CIFAR,
neck=GlobalAveragePooling, head=LinearClsHead(in_channels=512))``, as in
mmpretrain's own ``resnet18_8xb16_cifar10.py``; see
:func:`dfkd_resnet_cifar_backbone`. 11,173,962 parameters for ResNet-18 and
21,282,122 for ResNet-34 with 10 classes (200 classes: 11,271,432 and
21,379,592).

Differences
-----------
* Pooling: DAFL/DFAD pool with ``F.avg_pool2d(out, 4)``, which is global
  only on 32x32 inputs (4x4 final map); Fast/CMI and the Tiny-ImageNet
  variants use adaptive (global) pooling. mmpretrain's
  ``GlobalAveragePooling`` neck is global at every size, so it equals all of
  them at 32x32 and the adaptive ones at 64x64 (where DAFL's fixed 4x4 pool
  would leave a 2x2 map and a 2048-d feature that no 512-input ``linear``
  accepts).
* Names: ``shortcut.{0,1}`` (DAFL) / ``downsample.{0,1}`` (torchvision) ->
  ``downsample.{0,1}``; ``linear`` / ``fc`` -> ``head.fc``; the stem BN is
  ``bn1`` in all of them. ``tools/convert_teacher.py`` does the renaming.
* TA-DFKD's Tiny-ImageNet ResNet has a bias on ``conv1`` (``bias`` left at
  its default); BN right after it makes that bias equivalent to a shift of
  ``bn1.running_mean``, which is how the converter folds it (exactly, in
  train and eval mode). Its ``ResNet18`` builds ``[3, 4, 6, 3]`` blocks,
  i.e. a ResNet-34; convert such a checkpoint with ``--arch resnet34``.
* Initialisation only: ``ResNet_CIFAR`` zero-initialises the last BN weight
  of each block (``zero_init_residual=True``) and uses Kaiming-normal convs;
  DAFL / CMI keep PyTorch's defaults (DFAD: Kaiming-normal). It does not matter for converted teachers;
  for students trained from scratch set ``zero_init_residual=False`` to
  follow DAFL.
* Extras that default to the reference behaviour: ``frozen_stages``,
  ``norm_eval``, ``drop_path_rate``, ``with_cp``.
"""

# Blocks per stage of the two depths the DFKD papers use.
DFKD_RESNET_DEPTHS = {18: (2, 2, 2, 2), 34: (3, 4, 6, 3)}


def dfkd_resnet_cifar_backbone(depth: int) -> dict:
    """Backbone config of the DFKD papers' CIFAR / Tiny-ImageNet ResNet.

    Args:
        depth (int): 18 or 34.

    Returns:
        dict: ``dict(type='ResNet_CIFAR', depth=depth, ...)`` to use with
        ``neck=dict(type='GlobalAveragePooling')`` and
        ``head=dict(type='LinearClsHead', in_channels=512, ...)``.
    """
    if depth not in DFKD_RESNET_DEPTHS:
        raise ValueError(f'the DFKD papers use ResNet-18 and ResNet-34 '
                         f'(depth 18 or 34), got depth {depth}')
    return dict(
        type='ResNet_CIFAR',
        depth=depth,
        num_stages=4,
        out_indices=(3, ),
        style='pytorch')
