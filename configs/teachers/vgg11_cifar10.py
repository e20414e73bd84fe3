# Train the CIFAR-10 VGG-11 (BN) teacher from scratch with the papers' recipe
# (../_base_/schedules/sgd_cosine_200e.py). The reference teacher (CMI/Fast)
# scores 92.25.
#   python tools/train.py configs/teachers/vgg11_cifar10.py
# The weights are work_dirs/vgg11_cifar10/epoch_200.pth; README.md says how
# to turn them into checkpoints/cifar10_vgg11.pth.
_base_ = [
    '../_base_/models/vgg11_cifar.py',
    '../_base_/supervised_cifar10.py',
]
