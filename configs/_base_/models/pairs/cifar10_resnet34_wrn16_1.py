# CIFAR-10 ResNet-34 -> WRN-16-1 (a GapSSG Table 1 pair).
# Teacher: mmpretrain's model-zoo CIFAR-10 ResNet-34 (top-1 95.34; the
# CMI/Fast reference teacher scores 95.70, see configs/teachers/README.md).
# Seed pair of the DFKD benchmarks; a method config inherits this file and
# sets model.architecture = {{_base_.student}} and
# model.teachers = dict(teacher={{_base_.teacher}}).
student = dict(cfg_path='mmdfkd::_base_/models/wrn16_1_cifar.py')
teacher = dict(
    build_cfg=dict(cfg_path='mmdfkd::_base_/models/resnet34_cifar.py'),
    ckpt_path='https://download.openmmlab.com/mmclassification/v0/resnet/'
    'resnet34_b16x8_cifar10_20210528-a8aa36a6.pth')
