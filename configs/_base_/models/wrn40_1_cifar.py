# WRN-40-1 (Wide-ResNet of ZSKT, as used by CMI, Fast, NAYER, AdaDFKD):
# WideResNet_CIFAR backbone (final map 64 x 1 = 64 channels), global
# average pooling, linear head. 10 classes (CIFAR-10); CIFAR-100 configs
# override head.num_classes.
model = dict(
    type='ImageClassifier',
    backbone=dict(type='WideResNet_CIFAR', depth=40, widen_factor=1),
    neck=dict(type='GlobalAveragePooling'),
    head=dict(
        type='LinearClsHead',
        num_classes=10,
        in_channels=64,
        loss=dict(type='CrossEntropyLoss', loss_weight=1.0)))
