# CIFAR-100 WRN-40-2 -> WRN-16-2.
# Teacher: checkpoints/cifar100_wrn40_2.pth, the CMI/Fast reference teacher
# (75.83) converted by tools/convert_teacher.py or one trained by
# configs/teachers/wrn40_2_cifar100.py (configs/teachers/README.md).
# Seed pair of the DFKD benchmarks; a method config inherits this file and
# sets model.architecture = {{_base_.student}} and
# model.teachers = dict(teacher={{_base_.teacher}}).
student = dict(
    cfg_path='mmdfkd::_base_/models/wrn16_2_cifar.py',
    head=dict(num_classes=100))
teacher = dict(
    build_cfg=dict(
        cfg_path='mmdfkd::_base_/models/wrn40_2_cifar.py',
        head=dict(num_classes=100)),
    ckpt_path='checkpoints/cifar100_wrn40_2.pth')
