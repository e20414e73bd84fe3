# CIFAR-100 test set for evaluation only, through mmpretrain's CIFAR100
# dataset (downloads https://www.cs.toronto.edu/~kriz/cifar-100-python.tar.gz).
# The names are prefixed so that a CIFAR-100 config can inherit its CIFAR-10
# sibling and this file together (mmengine forbids a key in two bases):
#   data_preprocessor = {{_base_.cifar100_data_preprocessor}}
#   val_dataloader = {{_base_.cifar100_val_dataloader}}
# Normalisation constants of CIFAR-100 live here and nowhere else.
cifar100_data_preprocessor = dict(
    type='ClsDataPreprocessor',
    num_classes=100,
    mean=[129.304, 124.070, 112.434],
    std=[68.170, 65.392, 70.418],
    to_rgb=False)
cifar100_val_dataloader = dict(
    batch_size=256,
    num_workers=2,
    sampler=dict(type='DefaultSampler', shuffle=False),
    dataset=dict(
        type='CIFAR100',
        data_root='data/cifar100',
        split='test',
        test_mode=True,
        pipeline=[dict(type='PackInputs')]))
