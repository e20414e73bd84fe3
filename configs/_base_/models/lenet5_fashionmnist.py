# LeNet-5 teacher of DAFL (Chen et al., ICCV 2019) for 32x32 grey images,
# with BatchNorm so that BN-statistics priors (DeepInversion) can use it.
model = dict(
    type='ImageClassifier',
    backbone=dict(
        type='DFKDLeNet5', width_multiplier=1.0, in_channels=1, with_bn=True),
    neck=None,
    head=dict(
        type='LinearClsHead',
        num_classes=10,
        in_channels=84,
        loss=dict(type='CrossEntropyLoss', loss_weight=1.0),
        topk=(1, )))
