# Everything a data-free CIFAR-10 config shares: ./data_free_benchmark.py
# (runtime, latent noise as the training data, iteration-based loops) and
# the real test set for evaluation only.
_base_ = [
    './data_free_benchmark.py',
    './datasets/cifar10_eval.py',
]
