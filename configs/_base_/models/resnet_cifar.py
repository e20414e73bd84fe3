# Named ResNet students and teachers for configs that derive their CIFAR-100
# run from the CIFAR-10 one (the method configs inherit their CIFAR-10
# sibling and switch to `{{_base_.resnet18_cifar100}}`), which a pair file
# (./pairs/, variables `student` and `teacher`) cannot serve: mmengine
# forbids the same key in two bases. New configs inherit one pair file.
# Models: ./resnet18_cifar.py and ./resnet34_cifar.py (mmpretrain's
# ResNet_CIFAR). Teachers: the CIFAR-10 ResNet-34 of mmpretrain's model zoo
# (top-1 95.34); mmpretrain publishes no CIFAR-100 ResNet-34, so that one is
# checkpoints/cifar100_resnet34.pth, converted from the reference teachers
# or trained by configs/teachers/resnet34_cifar100.py (see
# configs/teachers/README.md). tests/test_configs.py checks that these
# entries equal the pair files'.
resnet18_cifar10 = dict(cfg_path='mmdfkd::_base_/models/resnet18_cifar.py')
resnet34_cifar10 = dict(cfg_path='mmdfkd::_base_/models/resnet34_cifar.py')
resnet18_cifar100 = dict(
    cfg_path='mmdfkd::_base_/models/resnet18_cifar.py',
    head=dict(num_classes=100))
resnet34_cifar100 = dict(
    cfg_path='mmdfkd::_base_/models/resnet34_cifar.py',
    head=dict(num_classes=100))
resnet34_cifar10_teacher = dict(
    build_cfg=resnet34_cifar10,
    ckpt_path='https://download.openmmlab.com/mmclassification/v0/resnet/'
    'resnet34_b16x8_cifar10_20210528-a8aa36a6.pth')
resnet34_cifar100_teacher = dict(
    build_cfg=resnet34_cifar100,
    ckpt_path='checkpoints/cifar100_resnet34.pth')
