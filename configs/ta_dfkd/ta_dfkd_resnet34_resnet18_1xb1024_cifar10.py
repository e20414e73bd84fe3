# TA-DFKD (Shin & Choi, AAAI 2024) on CIFAR-10, ResNet-34 -> ResNet-18, the
# recipe of the official code's README run (../_base_/algorithms/ta_dfkd.py):
# batch 1024, 36 iterations x (10 student steps + 1 generator step) per
# epoch, 200 epochs = 7200 iterations, student SGD 0.01 with cosine decay
# over the run, generator Adam 1e-3, validation every epoch. The reference
# runs on one or two GPUs (DataParallel) with the whole batch of 1024; with
# N GPUs here set train_dataloader.batch_size=1024 // N.
_base_ = [
    '../_base_/algorithms/ta_dfkd.py',
    '../_base_/data_free_cifar10.py',
    '../_base_/models/pairs/cifar10_resnet34_resnet18.py',
]

batch_size = 1024
iters_per_epoch = 36
num_epochs = 200

model = dict(
    data_preprocessor={{_base_.data_preprocessor}},
    architecture={{_base_.student}},
    teachers=dict(teacher={{_base_.teacher}}),
    generator=dict(img_size=32, out_channels=3),
    generator_distiller=dict(
        distill_losses=dict(
            loss_l2=dict(loss_weight=6e-3 * batch_size**0.5))))

train_dataloader = dict(
    batch_size=batch_size,
    dataset=dict(latent_dim=1000, num_classes=10, num_draws=11))
train_cfg = dict(
    max_iters=num_epochs * iters_per_epoch, val_interval=iters_per_epoch)
default_hooks = dict(checkpoint=dict(interval=10 * iters_per_epoch))
auto_scale_lr = dict(base_batch_size=batch_size)
