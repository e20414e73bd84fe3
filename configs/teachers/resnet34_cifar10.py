# Train the CIFAR-10 ResNet-34 teacher from scratch with the papers' recipe
# (../_base_/schedules/sgd_cosine_200e.py). The reference teacher (CMI/Fast)
# scores 95.70, mmpretrain's model-zoo one 95.34.
#   python tools/train.py configs/teachers/resnet34_cifar10.py
# The weights are work_dirs/resnet34_cifar10/epoch_200.pth; README.md says
# how to turn them into checkpoints/cifar10_resnet34.pth.
_base_ = [
    '../_base_/models/resnet34_cifar.py',
    '../_base_/supervised_cifar10.py',
]
