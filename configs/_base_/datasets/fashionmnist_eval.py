# Fashion-MNIST test set for evaluation (data-free configs read no train
# images). Fashion-MNIST (Xiao et al., arXiv:1708.07747) through mmpretrain's own
# `FashionMNIST` dataset. Prepare the data once with
#   python tools/dataset_converters/prepare_fashion_mnist.py
# which lays the four uncompressed IDX files out in `data_root`.
#
# mmengine resolves variables when it parses a config, so overriding only
# `data_root` (in a child config or with --cfg-options) does not reach the
# dataloaders below; override `<train|val|test>_dataloader.dataset.data_root`
# as well, or let the training script propagate `data_root`.
_base_ = ['./normalization.py']

dataset_type = 'FashionMNIST'
data_root = 'data/fashion_mnist'

# Normalisation: ./normalization.py. Runner passes the top-level
# `data_preprocessor` to the model; distillation configs should reuse it.
data_preprocessor = {{_base_.fashionmnist_data_preprocessor}}

# LeNet-5 wants 32x32 inputs: pad 2 zero pixels on every side so that the
# 28x28 image stays centred. mmcv's `Pad(size=(32, 32))` would pad only the
# bottom and right; mmpretrain's `RandomCrop` pads all borders first and,
# as the padded image already has `crop_size`, its crop offset is always 0,
# so this step is deterministic despite its name.
pipeline = [
    dict(type='RandomCrop', crop_size=32, padding=2, pad_val=0),
    dict(type='PackInputs'),
]

# mmpretrain 1.2.0's MNIST picks its files by `test_mode`, not by `split`:
# without test_mode=True, split='test' would silently load the training set.
val_dataloader = dict(
    batch_size=1000,
    num_workers=0,
    persistent_workers=False,
    sampler=dict(type='DefaultSampler', shuffle=False),
    dataset=dict(
        type=dataset_type,
        data_root=data_root,
        split='test',
        test_mode=True,
        download=False,
        pipeline=pipeline))
val_evaluator = dict(type='Accuracy', topk=(1, ))

test_dataloader = val_dataloader
test_evaluator = val_evaluator
