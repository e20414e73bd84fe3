# CIFAR-100 ResNet-18 trained from scratch: the "student (scratch)" baseline
# of the DFKD tables (CMI/Fast: 77.10), with the teachers' recipe.
#   python tools/train.py configs/teachers/resnet18_cifar100.py
# The weights are work_dirs/resnet18_cifar100/epoch_200.pth; README.md says
# how to turn them into checkpoints/cifar100_resnet18.pth.
_base_ = [
    '../_base_/models/resnet18_cifar.py',
    '../_base_/supervised_cifar100.py',
]
model = dict(head=dict(num_classes=100))
