# Everything a supervised Tiny-ImageNet config shares (the teachers and the
# students' from-scratch baselines, configs/teachers/*_tinyimagenet.py):
# runtime, the Tiny-ImageNet train and test sets with crop + flip, and the
# papers' 200-epoch SGD recipe. Configs add a model from
# ../_base_/models/ with its head sized for Tiny-ImageNet.
_base_ = [
    './supervised_runtime.py',
    './datasets/tinyimagenet_bs128.py',
    './schedules/sgd_cosine_200e.py',
]
