# VGG-11 with BatchNorm for 32x32 images (RepDistiller's vgg11_bn, the
# "vgg11" teacher of CMI, Fast, NAYER, AdaDFKD): VGG_CIFAR backbone (512
# channels), global average pooling, linear head. 10 classes (CIFAR-10);
# CIFAR-100 configs override head.num_classes.
model = dict(
    type='ImageClassifier',
    backbone=dict(type='VGG_CIFAR', depth=11),
    neck=dict(type='GlobalAveragePooling'),
    head=dict(
        type='LinearClsHead',
        num_classes=10,
        in_channels=512,
        loss=dict(type='CrossEntropyLoss', loss_weight=1.0)))
