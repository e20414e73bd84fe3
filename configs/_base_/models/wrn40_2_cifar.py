# WRN-40-2 (Wide-ResNet of ZSKT, as used by CMI, Fast, NAYER, AdaDFKD):
# WideResNet_CIFAR backbone (final map 64 x 2 = 128 channels), global
# average pooling, linear head. 10 classes (CIFAR-10); CIFAR-100 configs
# override head.num_classes.
model = dict(
    type='ImageClassifier',
    backbone=dict(type='WideResNet_CIFAR', depth=40, widen_factor=2),
    neck=dict(type='GlobalAveragePooling'),
    head=dict(
        type='LinearClsHead',
        num_classes=10,
        in_channels=128,
        loss=dict(type='CrossEntropyLoss', loss_weight=1.0)))
