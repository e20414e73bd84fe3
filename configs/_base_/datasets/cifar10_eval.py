# CIFAR-10 test set for evaluation only (data-free training reads no image),
# through mmpretrain's CIFAR10 dataset, which downloads the archive from
# https://www.cs.toronto.edu/~kriz/cifar-10-python.tar.gz on first use.
# Normalisation constants of CIFAR-10 live here and nowhere else.
data_root = 'data/cifar10'
data_preprocessor = dict(
    type='ClsDataPreprocessor',
    num_classes=10,
    mean=[125.307, 122.961, 113.8575],
    std=[51.5865, 50.847, 51.255],
    to_rgb=False)
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
