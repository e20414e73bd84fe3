# CIFAR-100 WRN-40-1 trained from scratch: the "student (scratch)" baseline
# of the DFKD tables (CMI/Fast: 72.19), with the teachers' recipe.
#   python tools/train.py configs/teachers/wrn40_1_cifar100.py
# The weights are work_dirs/wrn40_1_cifar100/epoch_200.pth; README.md says
# how to turn them into checkpoints/cifar100_wrn40_1.pth.
_base_ = [
    '../_base_/models/wrn40_1_cifar.py',
    '../_base_/supervised_cifar100.py',
]
model = dict(head=dict(num_classes=100))
