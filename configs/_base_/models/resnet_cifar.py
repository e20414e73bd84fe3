# The CIFAR ResNets every DFKD paper uses (3x3 stride-1 stem, no max-pool,
# stages 64-128-256-512), from mmpretrain's configs (ResNet_CIFAR backbone,
# global average pooling, linear head 'head.fc'), and the CIFAR-10
# ResNet-34 teacher of mmpretrain's model zoo (top-1 95.34).
resnet18_cifar10 = dict(cfg_path='mmpretrain::resnet/resnet18_8xb16_cifar10.py')
resnet34_cifar10 = dict(cfg_path='mmpretrain::resnet/resnet34_8xb16_cifar10.py')
resnet18_cifar100 = dict(
    cfg_path='mmpretrain::resnet/resnet18_8xb16_cifar10.py',
    head=dict(num_classes=100))
resnet34_cifar100 = dict(
    cfg_path='mmpretrain::resnet/resnet34_8xb16_cifar10.py',
    head=dict(num_classes=100))
resnet34_cifar10_teacher = dict(
    build_cfg=resnet34_cifar10,
    ckpt_path='https://download.openmmlab.com/mmclassification/v0/resnet/'
    'resnet34_b16x8_cifar10_20210528-a8aa36a6.pth')
# mmpretrain publishes no CIFAR-100 ResNet-34; train one with
# configs/teachers/ or convert a reference teacher (issue: model zoo) and
# point this path (or --cfg-options model.teachers.teacher.ckpt_path=...)
# at it
resnet34_cifar100_teacher = dict(
    build_cfg=resnet34_cifar100,
    ckpt_path='checkpoints/resnet34_cifar100.pth')
