# Train the CIFAR-100 WRN-40-2 teacher from scratch with the papers' recipe
# (../_base_/schedules/sgd_cosine_200e.py). The reference teacher (CMI/Fast)
# scores 75.83.
#   python tools/train.py configs/teachers/wrn40_2_cifar100.py
# The weights are work_dirs/wrn40_2_cifar100/epoch_200.pth; README.md says
# how to turn them into checkpoints/cifar100_wrn40_2.pth.
_base_ = [
    '../_base_/models/wrn40_2_cifar.py',
    '../_base_/supervised_cifar100.py',
]
model = dict(head=dict(num_classes=100))
