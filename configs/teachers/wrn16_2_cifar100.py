# CIFAR-100 WRN-16-2 trained from scratch: the "student (scratch)" baseline
# of the DFKD tables (CMI/Fast: 73.56), with the teachers' recipe.
#   python tools/train.py configs/teachers/wrn16_2_cifar100.py
# The weights are work_dirs/wrn16_2_cifar100/epoch_200.pth; README.md says
# how to turn them into checkpoints/cifar100_wrn16_2.pth.
_base_ = [
    '../_base_/models/wrn16_2_cifar.py',
    '../_base_/supervised_cifar100.py',
]
model = dict(head=dict(num_classes=100))
