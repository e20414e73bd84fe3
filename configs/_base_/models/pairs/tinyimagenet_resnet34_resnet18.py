# Tiny-ImageNet (64x64, 200 classes) ResNet-34 -> ResNet-18 (NAYER, CPNet,
# TA-DFKD; the CIFAR ResNets with global pooling).
# Teacher: checkpoints/tinyimagenet_resnet34.pth, AdaDFKD's published
# ResNet-34 (62.43) converted by tools/convert_teacher.py or one trained by
# configs/teachers/resnet34_tinyimagenet.py (configs/teachers/README.md).
# Seed pair of the DFKD benchmarks; a method config inherits this file and
# sets model.architecture = {{_base_.student}} and
# model.teachers = dict(teacher={{_base_.teacher}}).
student = dict(
    cfg_path='mmdfkd::_base_/models/resnet18_cifar.py',
    head=dict(num_classes=200))
teacher = dict(
    build_cfg=dict(
        cfg_path='mmdfkd::_base_/models/resnet34_cifar.py',
        head=dict(num_classes=200)),
    ckpt_path='checkpoints/tinyimagenet_resnet34.pth')
