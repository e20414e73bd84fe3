# Everything a data-free CIFAR-100 config shares: ./data_free_benchmark.py
# (runtime, latent noise as the training data, iteration-based loops) and
# the real test set for evaluation only. Compose it with a recipe and a pair:
#   _base_ = ['../_base_/algorithms/<method>.py',
#             '../_base_/data_free_cifar100.py',
#             '../_base_/models/pairs/cifar100_wrn40_2_wrn16_1.py']
_base_ = [
    './data_free_benchmark.py',
    './datasets/cifar100_eval.py',
]
train_dataloader = dict(dataset=dict(num_classes=100))
