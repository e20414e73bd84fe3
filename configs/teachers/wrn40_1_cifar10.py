# CIFAR-10 WRN-40-1 trained from scratch: the "student (scratch)" baseline of
# the DFKD tables (CMI/Fast: 93.94), with the teachers' recipe.
#   python tools/train.py configs/teachers/wrn40_1_cifar10.py
# The weights are work_dirs/wrn40_1_cifar10/epoch_200.pth; README.md says how
# to turn them into checkpoints/cifar10_wrn40_1.pth.
_base_ = [
    '../_base_/models/wrn40_1_cifar.py',
    '../_base_/supervised_cifar10.py',
]
