# CIFAR-10 ResNet-18 trained from scratch: the "student (scratch)" baseline
# of the DFKD tables (CMI/Fast: 95.20; mmpretrain's model zoo: 94.82), with
# the teachers' recipe.
#   python tools/train.py configs/teachers/resnet18_cifar10.py
# The weights are work_dirs/resnet18_cifar10/epoch_200.pth; README.md says
# how to turn them into checkpoints/cifar10_resnet18.pth.
_base_ = [
    '../_base_/models/resnet18_cifar.py',
    '../_base_/supervised_cifar10.py',
]
