# Tiny-ImageNet-200 train and validation sets for supervised training
# (teachers and the students' from-scratch baselines): batch 128, random
# 64x64 crop of the image zero-padded by 8 pixels (the 32-px recipe's
# padding of 1/8 of the side) and horizontal flip. Validation set, data_root
# and normalisation come from ./tinyimagenet_eval.py.
_base_ = ['./tinyimagenet_eval.py']

train_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='RandomCrop', crop_size=64, padding=8),
    dict(type='RandomFlip', prob=0.5, direction='horizontal'),
    dict(type='PackInputs'),
]
train_dataloader = dict(
    batch_size=128,
    num_workers=2,
    sampler=dict(type='DefaultSampler', shuffle=True),
    dataset=dict(
        type='TinyImageNet',
        data_root={{_base_.data_root}},
        split='train',
        pipeline=train_pipeline))
val_evaluator = dict(type='Accuracy', topk=(1, 5))
test_evaluator = val_evaluator
