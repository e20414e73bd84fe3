# Train the Tiny-ImageNet ResNet-34 teacher from scratch with the papers'
# recipe (../_base_/schedules/sgd_cosine_200e.py). AdaDFKD's published
# teacher scores 62.43 (64x64 inputs, 200 classes).
#   python tools/train.py configs/teachers/resnet34_tinyimagenet.py
# The weights are work_dirs/resnet34_tinyimagenet/epoch_200.pth; README.md
# says how to turn them into checkpoints/tinyimagenet_resnet34.pth.
_base_ = [
    '../_base_/models/resnet34_cifar.py',
    '../_base_/supervised_tinyimagenet.py',
]
model = dict(head=dict(num_classes=200))
