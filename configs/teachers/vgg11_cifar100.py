# Train the CIFAR-100 VGG-11 (BN) teacher from scratch with the papers'
# recipe (../_base_/schedules/sgd_cosine_200e.py). The reference teacher
# (CMI/Fast) scores 71.32.
#   python tools/train.py configs/teachers/vgg11_cifar100.py
# The weights are work_dirs/vgg11_cifar100/epoch_200.pth; README.md says how
# to turn them into checkpoints/cifar100_vgg11.pth.
_base_ = [
    '../_base_/models/vgg11_cifar.py',
    '../_base_/supervised_cifar100.py',
]
model = dict(head=dict(num_classes=100))
