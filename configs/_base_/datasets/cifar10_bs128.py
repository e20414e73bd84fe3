# CIFAR-10 train and test sets for supervised training (teachers and
# the students' from-scratch baselines): batch 128, random 32x32 crop of the
# image zero-padded by 4 pixels and horizontal flip, as in every DFKD
# repository's teacher script. Test set, data_root and normalisation come
# from ./cifar10_eval.py.
_base_ = ['./cifar10_eval.py']

train_pipeline = [
    dict(type='RandomCrop', crop_size=32, padding=4),
    dict(type='RandomFlip', prob=0.5, direction='horizontal'),
    dict(type='PackInputs'),
]
train_dataloader = dict(
    batch_size=128,
    num_workers=2,
    sampler=dict(type='DefaultSampler', shuffle=True),
    dataset=dict(
        type='CIFAR10',
        data_root={{_base_.data_root}},
        split='train',
        pipeline=train_pipeline))
val_evaluator = dict(type='Accuracy', topk=(1, ))
test_evaluator = val_evaluator
