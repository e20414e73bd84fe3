# CIFAR-100 test set for evaluation only, through mmpretrain's CIFAR100
# dataset (downloads https://www.cs.toronto.edu/~kriz/cifar-100-python.tar.gz
# on first use). Normalisation: ./normalization.py.
#
# A CIFAR-100 config that inherits its CIFAR-10 sibling cannot inherit this
# file as well (both would bring ./normalization.py: mmengine forbids a key
# in two bases); it swaps the dataset instead, as configs/dafl/*_cifar100.py:
#   data_root = 'data/cifar100'
#   data_preprocessor = {{_base_.cifar100_data_preprocessor}}
#   val_dataloader = dict(dataset=dict(type='CIFAR100', data_root=data_root))
#   test_dataloader = val_dataloader
# New data-free configs inherit ../data_free_cifar100.py instead.
_base_ = ['./normalization.py']

data_root = 'data/cifar100'
data_preprocessor = {{_base_.cifar100_data_preprocessor}}
val_dataloader = dict(
    batch_size=256,
    num_workers=2,
    sampler=dict(type='DefaultSampler', shuffle=False),
    dataset=dict(
        type='CIFAR100',
        data_root=data_root,
        split='test',
        test_mode=True,
        pipeline=[dict(type='PackInputs')]))
test_dataloader = val_dataloader
