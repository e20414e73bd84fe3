# LeNet-5-half student of DAFL (Chen et al., ICCV 2019): every width halved.
model = dict(
    type='ImageClassifier',
    backbone=dict(
        type='DFKDLeNet5', width_multiplier=0.5, in_channels=1, with_bn=True),
    neck=None,
    head=dict(
        type='LinearClsHead',
        num_classes=10,
        in_channels=42,
        loss=dict(type='CrossEntropyLoss', loss_weight=1.0),
        topk=(1, )))
