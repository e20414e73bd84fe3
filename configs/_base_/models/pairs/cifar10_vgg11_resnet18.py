# CIFAR-10 VGG-11 (BN) -> ResNet-18.
# Teacher: checkpoints/cifar10_vgg11.pth, the CMI/Fast reference teacher
# (92.25) converted by tools/convert_teacher.py or one trained by
# configs/teachers/vgg11_cifar10.py (configs/teachers/README.md).
# Seed pair of the DFKD benchmarks; a method config inherits this file and
# sets model.architecture = {{_base_.student}} and
# model.teachers = dict(teacher={{_base_.teacher}}).
student = dict(cfg_path='mmdfkd::_base_/models/resnet18_cifar.py')
teacher = dict(
    build_cfg=dict(cfg_path='mmdfkd::_base_/models/vgg11_cifar.py'),
    ckpt_path='checkpoints/cifar10_vgg11.pth')
