# CIFAR-100 WRN-16-1 trained from scratch: the "student (scratch)" baseline
# of the DFKD tables (CMI/Fast: 65.31), with the teachers' recipe.
#   python tools/train.py configs/teachers/wrn16_1_cifar100.py
# The weights are work_dirs/wrn16_1_cifar100/epoch_200.pth; README.md says
# how to turn them into checkpoints/cifar100_wrn16_1.pth.
_base_ = [
    '../_base_/models/wrn16_1_cifar.py',
    '../_base_/supervised_cifar100.py',
]
model = dict(head=dict(num_classes=100))
