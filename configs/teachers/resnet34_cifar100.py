# Train the CIFAR-100 ResNet-34 teacher from scratch with the papers' recipe
# (../_base_/schedules/sgd_cosine_200e.py). The reference teacher (CMI/Fast)
# scores 78.05.
#   python tools/train.py configs/teachers/resnet34_cifar100.py
# The weights are work_dirs/resnet34_cifar100/epoch_200.pth; README.md says
# how to turn them into checkpoints/cifar100_resnet34.pth.
_base_ = [
    '../_base_/models/resnet34_cifar.py',
    '../_base_/supervised_cifar100.py',
]
model = dict(head=dict(num_classes=100))
