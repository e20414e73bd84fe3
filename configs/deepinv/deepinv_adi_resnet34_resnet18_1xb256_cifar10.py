# Adaptive DeepInversion (Yin et al., CVPR 2020) on CIFAR-10, ResNet-34 ->
# ResNet-18 (Fast's table, DeepInv-2k: 93.26 after 42 GPU-hours). Each
# iteration optimises 256 images for 2000 Adam steps (lr 0.1) on
#   CE(T(x), y) + 10 * L_BN + 2.5e-5 * TV + 3e-5 * ||x||_2
#   + (1 - JS_tau=3(T(x), S(x)))        (ADI competition; weight -1 on JS)
# with random jitter (2 px) and flips, keeps them in a memory bank (50k
# images, the size of the references' synthetic sets) and runs 200 student
# KD steps (tau 20) on bank batches. 200 iterations synthesise 51,200 images.
_base_ = [
    '../_base_/data_free_cifar10.py',
    '../_base_/models/resnet_cifar.py',
]

batch_size = 256
# valid [0, 255] pixel range in the normalised space (per-channel bounds are
# approximated by the widest channel)
pixel_range = (-125.307 / 50.847, (255 - 113.8575) / 50.847)
logits = dict(type='ModuleOutputs', source='res34.head.fc')

model = dict(
    type='DeepInversionDistillation',
    data_preprocessor={{_base_.data_preprocessor}},
    architecture={{_base_.resnet18_cifar10}},
    teachers=dict(
        res34=dict(
            build_cfg={{_base_.resnet34_cifar10}},
            ckpt_path={{_base_.resnet34_cifar10_ckpt}})),
    generator=dict(
        type='LearnableImages',
        batch_size=batch_size,
        image_shape=(3, 32, 32),
        value_range=pixel_range),
    memory_bank=dict(type='SyntheticMemoryBank', capacity=51200),
    jitter=2,
    flip=True,
    generator_distiller=dict(
        type='ConfigurableDistiller',
        student_recorders=dict(
            logits=dict(type='ModuleOutputs', source='head.fc')),
        teacher_recorders=dict(
            bn=dict(type='BNStatisticsRecorder', source='res34'),
            logits=logits),
        distill_losses=dict(
            loss_ce=dict(type='CrossEntropyLoss', loss_weight=1.0),
            loss_bn=dict(type='BNStatisticsLoss', loss_weight=10.0),
            loss_tv=dict(type='TotalVariationLoss', loss_weight=2.5e-5),
            loss_l2=dict(type='ImageL2NormLoss', loss_weight=3e-5),
            loss_competition=dict(
                type='JSDivergence', tau=3.0, loss_weight=-1.0)),
        loss_forward_mappings=dict(
            loss_ce=dict(
                cls_score=dict(from_student=False, recorder='logits'),
                label=dict(from_data='targets')),
            loss_bn=dict(bn_stats=dict(from_student=False, recorder='bn')),
            loss_tv=dict(images=dict(from_data='images')),
            loss_l2=dict(images=dict(from_data='images')),
            loss_competition=dict(
                preds_S=dict(from_student=True, recorder='logits'),
                preds_T=dict(from_student=False, recorder='logits')))),
    distiller=dict(
        type='ConfigurableDistiller',
        student_recorders=dict(
            logits=dict(type='ModuleOutputs', source='head.fc')),
        teacher_recorders=dict(logits=logits),
        distill_losses=dict(loss_kd=dict(type='KLDivergence', tau=20.0)),
        loss_forward_mappings=dict(
            loss_kd=dict(
                preds_S=dict(from_student=True, recorder='logits'),
                preds_T=dict(from_student=False, recorder='logits')))),
    generator_iter=2000,
    student_iter=200)

train_dataloader = dict(
    batch_size=batch_size,
    dataset=dict(latent_dim=0, num_classes=10, num_draws=1))

optim_wrapper = dict(
    constructor='SeparateOptimWrapperConstructor',
    architecture=dict(
        optimizer=dict(type='SGD', lr=0.1, momentum=0.9, weight_decay=1e-4)),
    generator=dict(optimizer=dict(type='Adam', lr=0.1, betas=(0.5, 0.99))))
param_scheduler = dict(
    architecture=dict(type='CosineAnnealingLR', by_epoch=False, eta_min=2e-4))
train_cfg = dict(max_iters=200, val_interval=5)
default_hooks = dict(checkpoint=dict(interval=5))
custom_hooks = [dict(type='SyntheticImageVisualizationHook', interval=5)]
