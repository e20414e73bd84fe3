# CIFAR-100 VGG-11 (BN) -> ResNet-18.
# Teacher: checkpoints/cifar100_vgg11.pth, the CMI/Fast reference teacher
# (71.32) converted by tools/convert_teacher.py or one trained by
# configs/teachers/vgg11_cifar100.py (configs/teachers/README.md).
# Seed pair of the DFKD benchmarks; a method config inherits this file and
# sets model.architecture = {{_base_.student}} and
# model.teachers = dict(teacher={{_base_.teacher}}).
student = dict(
    cfg_path='mmdfkd::_base_/models/resnet18_cifar.py',
    head=dict(num_classes=100))
teacher = dict(
    build_cfg=dict(
        cfg_path='mmdfkd::_base_/models/vgg11_cifar.py',
        head=dict(num_classes=100)),
    ckpt_path='checkpoints/cifar100_vgg11.pth')
