# Everything a supervised CIFAR-10 config shares (the teachers and the
# students' from-scratch baselines, configs/teachers/*_cifar10.py):
# runtime, the CIFAR-10 train and test sets with crop + flip, and the
# papers' 200-epoch SGD recipe. Configs add a model from
# ../_base_/models/ with its head sized for CIFAR-10.
_base_ = [
    './supervised_runtime.py',
    './datasets/cifar10_bs128.py',
    './schedules/sgd_cosine_200e.py',
]
