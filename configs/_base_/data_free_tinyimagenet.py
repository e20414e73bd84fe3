# Everything a data-free Tiny-ImageNet config shares: ./data_free_benchmark.py
# (runtime, latent noise as the training data, iteration-based loops) and
# the real validation set (64x64, 200 classes) for evaluation only.
_base_ = [
    './data_free_benchmark.py',
    './datasets/tinyimagenet_eval.py',
]
train_dataloader = dict(dataset=dict(num_classes=200))
