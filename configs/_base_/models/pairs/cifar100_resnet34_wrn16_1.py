# CIFAR-100 ResNet-34 -> WRN-16-1 (a GapSSG Table 1 pair).
# Teacher: checkpoints/cifar100_resnet34.pth, the CMI/Fast reference teacher
# (78.05) converted by tools/convert_teacher.py or one trained by
# configs/teachers/resnet34_cifar100.py (configs/teachers/README.md).
# Seed pair of the DFKD benchmarks; a method config inherits this file and
# sets model.architecture = {{_base_.student}} and
# model.teachers = dict(teacher={{_base_.teacher}}).
student = dict(
    cfg_path='mmdfkd::_base_/models/wrn16_1_cifar.py',
    head=dict(num_classes=100))
teacher = dict(
    build_cfg=dict(
        cfg_path='mmdfkd::_base_/models/resnet34_cifar.py',
        head=dict(num_classes=100)),
    ckpt_path='checkpoints/cifar100_resnet34.pth')
