# CIFAR-10 WRN-40-2 -> WRN-16-1.
# Teacher: checkpoints/cifar10_wrn40_2.pth, the CMI/Fast reference teacher
# (94.87) converted by tools/convert_teacher.py or one trained by
# configs/teachers/wrn40_2_cifar10.py (configs/teachers/README.md).
# Seed pair of the DFKD benchmarks; a method config inherits this file and
# sets model.architecture = {{_base_.student}} and
# model.teachers = dict(teacher={{_base_.teacher}}).
student = dict(cfg_path='mmdfkd::_base_/models/wrn16_1_cifar.py')
teacher = dict(
    build_cfg=dict(cfg_path='mmdfkd::_base_/models/wrn40_2_cifar.py'),
    ckpt_path='checkpoints/cifar10_wrn40_2.pth')
