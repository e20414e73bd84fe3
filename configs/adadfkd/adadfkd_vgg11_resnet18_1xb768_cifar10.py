# AdaDFKD (Li et al., Neural Networks 2024) on CIFAR-10, VGG-11 -> ResNet-18,
# with the recipe of the official code (../_base_/algorithms/adadfkd.py) and
# the settings of the code's CIFAR-10 ResNet-34 -> ResNet-18 script: the code
# publishes none for this pair. Settings: batch 768, 300 epochs of 40
# iterations (1 generator step + 10 student steps), KD distance KL at T 20,
# lambda_0 2.2 (+0.0001 per student step), a constant adversarial weight 1,
# R2M weight 0.1 with a queue of 4096 student keys, tau 0.07 and a window of
# 0.9 of the queue sliding between epochs int(0.25 E) and int(0.75 E),
# student InfoNCE weight 0.1. Feature widths: 512 (teacher) and 512
# (student). Reported: 92.19 (AdaDFKD README). Validation every epoch (the
# code reports the best epoch).
_base_ = [
    '../_base_/algorithms/adadfkd.py',
    '../_base_/data_free_cifar10.py',
    '../_base_/models/pairs/cifar10_vgg11_resnet18.py',
]

epochs = 300
window_length, begin_fraction, end_fraction = 0.9, 0.25, 0.75
window_epochs = int((end_fraction - begin_fraction) * epochs)
model = dict(
    data_preprocessor={{_base_.data_preprocessor}},
    architecture={{_base_.student}},
    teachers=dict(teacher={{_base_.teacher}}),
    generator=dict(
        img_size=32,
        out_channels=3,
        output_normalization=dict(
            mean={{_base_.data_preprocessor.mean}},
            std={{_base_.data_preprocessor.std}})),
    generator_distiller=dict(distill_losses=dict(loss_r2m=dict(
        feature_dim=512, student_feature_dim=512,
        queue_size=4096, window_length=window_length,
        loss_weight=0.1))),
    negative_window_schedules=dict(loss_r2m=dict(
        slope=(1 - window_length) / window_epochs,
        begin=int(begin_fraction * epochs),
        end=int(begin_fraction * epochs) + window_epochs)),
    distiller=dict(distill_losses=dict(loss_kd=dict(
        distance='kl',
        tau=20.0,
        self_paced=dict(lambda_0=2.2, alpha=0.0001),
        info_nce=dict(
            feature_dim=512, student_feature_dim=512,
            loss_weight=0.1)))))

train_dataloader = dict(
    batch_size=768, dataset=dict(latent_dim=512, num_draws=11))
train_cfg = dict(max_iters=epochs * 40, val_interval=40)
default_hooks = dict(checkpoint=dict(interval=400))
auto_scale_lr = dict(base_batch_size=768)
