# CIFAR-100 MobileNetV2 trained from scratch: the "student (scratch)"
# baseline of the DFKD tables (GapSSG: 64.60), with the teachers' recipe.
#   python tools/train.py configs/teachers/mobilenetv2_cifar100.py
# The weights are work_dirs/mobilenetv2_cifar100/epoch_200.pth; README.md
# says how to turn them into checkpoints/cifar100_mobilenetv2.pth.
_base_ = [
    '../_base_/models/mobilenetv2_cifar.py',
    '../_base_/supervised_cifar100.py',
]
model = dict(head=dict(num_classes=100))
