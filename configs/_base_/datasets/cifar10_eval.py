# CIFAR-10 test set for evaluation only (data-free training reads no image),
# through mmpretrain's CIFAR10 dataset, which downloads the archive from
# https://www.cs.toronto.edu/~kriz/cifar-10-python.tar.gz on first use and
# checks its md5. Normalisation: ./normalization.py.
_base_ = ['./normalization.py']

data_root = 'data/cifar10'
data_preprocessor = {{_base_.cifar10_data_preprocessor}}
val_dataloader = dict(
    batch_size=256,
    num_workers=2,
    sampler=dict(type='DefaultSampler', shuffle=False),
    dataset=dict(
        type='CIFAR10',
        data_root=data_root,
        split='test',
        test_mode=True,
        pipeline=[dict(type='PackInputs')]))
test_dataloader = val_dataloader
