# TA-DFKD (Shin & Choi, AAAI 2024) on CIFAR-100, ResNet-34 -> ResNet-18:
# the CIFAR-10 recipe (../_base_/algorithms/ta_dfkd.py) for 500 epochs =
# 18000 iterations, batch 1024, evaluated on the CIFAR-100 test set (the
# reference script evaluates CIFAR-100 runs on CIFAR-10 images). Teacher:
# checkpoints/cifar100_resnet34.pth (configs/teachers/README.md), or set
# model.teachers.teacher.ckpt_path.
_base_ = [
    '../_base_/algorithms/ta_dfkd.py',
    '../_base_/data_free_cifar10.py',
    '../_base_/models/pairs/cifar100_resnet34_resnet18.py',
]

# the CIFAR-100 test set instead of CIFAR-10's (see
# ../_base_/datasets/cifar100_eval.py)
data_root = 'data/cifar100'
data_preprocessor = {{_base_.cifar100_data_preprocessor}}
val_dataloader = dict(dataset=dict(type='CIFAR100', data_root=data_root))
test_dataloader = val_dataloader

batch_size = 1024
iters_per_epoch = 36
num_epochs = 500

model = dict(
    data_preprocessor={{_base_.cifar100_data_preprocessor}},
    architecture={{_base_.student}},
    teachers=dict(teacher={{_base_.teacher}}),
    generator=dict(img_size=32, out_channels=3),
    generator_distiller=dict(
        distill_losses=dict(
            loss_l2=dict(loss_weight=6e-3 * batch_size**0.5))))

train_dataloader = dict(
    batch_size=batch_size,
    dataset=dict(latent_dim=1000, num_classes=100, num_draws=11))
train_cfg = dict(
    max_iters=num_epochs * iters_per_epoch, val_interval=iters_per_epoch)
default_hooks = dict(checkpoint=dict(interval=10 * iters_per_epoch))
auto_scale_lr = dict(base_batch_size=batch_size)
