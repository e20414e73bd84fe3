# MobileNetV2 for 32x32 images, RepDistiller's "mobile_half" (width 0.5,
# expansion 6), the MobileNetV2 of the KD literature: MobileNetV2_CIFAR
# backbone (1280 channels), global average pooling, linear head. 10 classes
# (CIFAR-10); CIFAR-100 configs override head.num_classes.
# GapSSG's released ResNet-34 -> MobileNetV2 code instead builds the
# "mobilenetv2" of the Fast/CMI registry, torchvision's ImageNet network
# (mmpretrain's MobileNetV2(widen_factor=1.0); see MobileNetV2_CIFAR).
model = dict(
    type='ImageClassifier',
    backbone=dict(type='MobileNetV2_CIFAR', widen_factor=0.5, expand_ratio=6),
    neck=dict(type='GlobalAveragePooling'),
    head=dict(
        type='LinearClsHead',
        num_classes=10,
        in_channels=1280,
        loss=dict(type='CrossEntropyLoss', loss_weight=1.0)))
