# Adaptive DeepInversion on CIFAR-100, ResNet-34 -> ResNet-18 (Fast's table,
# DeepInv-2k: 61.32). Same recipe as the CIFAR-10 config.
# mmpretrain has no CIFAR-100 ResNet-34: the teacher is
# checkpoints/cifar100_resnet34.pth (configs/teachers/README.md), or set
# model.teachers.teacher.ckpt_path.
# The CIFAR-10 config with the CIFAR-100 test set (see
# ../_base_/datasets/cifar100_eval.py) and 100-class models.
_base_ = ['./deepinv_adi_resnet34_resnet18_1xb256_cifar10.py']
data_root = 'data/cifar100'
data_preprocessor = {{_base_.cifar100_data_preprocessor}}
val_dataloader = dict(dataset=dict(type='CIFAR100', data_root=data_root))
test_dataloader = val_dataloader
model = dict(
    data_preprocessor={{_base_.cifar100_data_preprocessor}},
    architecture={{_base_.resnet18_cifar100}},
    teachers=dict(teacher={{_base_.resnet34_cifar100_teacher}}),
    # valid [0, 255] pixels in CIFAR-100's normalised space, widest channel
    generator=dict(
        value_range=(-129.304 / 65.392, (255 - 112.434) / 65.392)))
train_dataloader = dict(dataset=dict(num_classes=100))
