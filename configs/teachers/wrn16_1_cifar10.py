# CIFAR-10 WRN-16-1 trained from scratch: the "student (scratch)" baseline of
# the DFKD tables (CMI/Fast: 91.12), with the teachers' recipe.
#   python tools/train.py configs/teachers/wrn16_1_cifar10.py
# The weights are work_dirs/wrn16_1_cifar10/epoch_200.pth; README.md says how
# to turn them into checkpoints/cifar10_wrn16_1.pth.
_base_ = [
    '../_base_/models/wrn16_1_cifar.py',
    '../_base_/supervised_cifar10.py',
]
