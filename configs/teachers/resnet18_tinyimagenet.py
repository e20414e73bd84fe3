# Train the Tiny-ImageNet ResNet-18 teacher from scratch with the papers'
# recipe (../_base_/schedules/sgd_cosine_200e.py). AdaDFKD's published
# teacher scores 61.48; it is also the student's from-scratch baseline.
#   python tools/train.py configs/teachers/resnet18_tinyimagenet.py
# The weights are work_dirs/resnet18_tinyimagenet/epoch_200.pth; README.md
# says how to turn them into checkpoints/tinyimagenet_resnet18.pth.
_base_ = [
    '../_base_/models/resnet18_cifar.py',
    '../_base_/supervised_tinyimagenet.py',
]
model = dict(head=dict(num_classes=200))
