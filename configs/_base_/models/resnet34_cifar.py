# ResNet-34 of the DFKD papers (DAFL's CIFAR ResNet: 3x3 stride-1 stem, no
# max-pool, BasicBlocks 64-128-256-512), which is mmpretrain's ResNet_CIFAR
# (see mmdfkd/models/backbones/resnet_cifar_notes.py); the same network as
# mmpretrain's resnet34_8xb16_cifar10.py, so its model-zoo checkpoints load.
# 10 classes (CIFAR-10); CIFAR-100 and Tiny-ImageNet (64x64 inputs, global
# pooling) override head.num_classes to 100 / 200.
model = dict(
    type='ImageClassifier',
    backbone=dict(
        type='ResNet_CIFAR',
        depth=34,
        num_stages=4,
        out_indices=(3, ),
        style='pytorch'),
    neck=dict(type='GlobalAveragePooling'),
    head=dict(
        type='LinearClsHead',
        num_classes=10,
        in_channels=512,
        loss=dict(type='CrossEntropyLoss', loss_weight=1.0)))
