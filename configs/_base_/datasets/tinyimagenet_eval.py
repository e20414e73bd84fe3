# Tiny-ImageNet-200 validation set (the papers' test set: the official test
# split has no labels), 64x64 images, through mmdfkd's `TinyImageNet`, which
# reads the archive as shipped. Download and unpack it once:
#   wget http://cs231n.stanford.edu/tiny-imagenet-200.zip
#   unzip tiny-imagenet-200.zip -d data/    # -> data/tiny-imagenet-200/
# Normalisation (0.5 / 0.5): ./normalization.py.
_base_ = ['./normalization.py']

data_root = 'data/tiny-imagenet-200'
data_preprocessor = {{_base_.tinyimagenet_data_preprocessor}}
val_dataloader = dict(
    batch_size=256,
    num_workers=2,
    sampler=dict(type='DefaultSampler', shuffle=False),
    dataset=dict(
        type='TinyImageNet',
        data_root=data_root,
        split='val',
        test_mode=True,
        pipeline=[dict(type='LoadImageFromFile'),
                  dict(type='PackInputs')]))
test_dataloader = val_dataloader
