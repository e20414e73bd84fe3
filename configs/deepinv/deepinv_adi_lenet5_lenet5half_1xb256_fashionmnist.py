# Adaptive DeepInversion (Yin et al., "Dreaming to Distill", CVPR 2020) on
# Fashion-MNIST, CPU-sized. Each iteration optimises a fresh batch of 256
# images for `synthesis_steps` Adam steps on
#   CE(T(x), y) + 10 * L_BN + 2.5e-5 * TV + 3e-5 * ||x||_2
#   + (1 - JS_tau=3(T(x), S(x)))     (ADI competition: weight -1 on JS)
# adds them to an in-memory bank and runs 20 student KD steps (tau 4) on
# batches sampled from the bank; the student's LR follows a cosine schedule
# over the run. The reference runs 2k synthesis steps per batch on a GPU; the
# CPU config uses 50. Drop `loss_competition` for plain DeepInversion.
_base_ = ['../_base_/data_free_fashionmnist.py']

teacher_ckpt = 'checkpoints/lenet5_fashionmnist.pth'
batch_size = 256
synthesis_steps = 50
# valid pixel range [0, 1] in the normalised space of the data_preprocessor
pixel_range = ((0 - 72.94) / 90.0, (255 - 72.94) / 90.0)

teacher_logits = dict(logits=dict(type='ModuleOutputs', source='lenet5.head.fc'))
model = dict(
    type='DeepInversionDistillation',
    data_preprocessor={{_base_.data_preprocessor}},
    architecture=dict(cfg_path='mmdfkd::_base_/models/lenet5_half_fashionmnist.py'),
    teachers=dict(
        lenet5=dict(
            build_cfg=dict(cfg_path='mmdfkd::_base_/models/lenet5_fashionmnist.py'),
            ckpt_path=teacher_ckpt)),
    generator=dict(
        type='LearnableImages',
        batch_size=batch_size,
        image_shape=(1, 32, 32),
        value_range=pixel_range),
    memory_bank=dict(type='SyntheticMemoryBank', capacity=20480),
    jitter=2,
    flip=False,  # Fashion-MNIST classes are not mirror-symmetric in general
    generator_distiller=dict(
        type='ConfigurableDistiller',
        student_recorders=dict(
            logits=dict(type='ModuleOutputs', source='head.fc')),
        teacher_recorders=dict(
            bn=dict(type='BNStatisticsRecorder', source='lenet5'),
            **teacher_logits),
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
        teacher_recorders=teacher_logits,
        distill_losses=dict(loss_kd=dict(type='KLDivergence', tau=4.0)),
        loss_forward_mappings=dict(
            loss_kd=dict(
                preds_S=dict(from_student=True, recorder='logits'),
                preds_T=dict(from_student=False, recorder='logits')))),
    generator_iter=synthesis_steps,
    student_iter=20)

train_dataloader = dict(
    batch_size=batch_size,
    dataset=dict(latent_dim=0, num_classes=10, num_draws=1))
# about 15 CPU-minutes on one core of the reference machine
train_cfg = dict(max_iters=150, val_interval=25)
default_hooks = dict(
    logger=dict(interval=5), checkpoint=dict(interval=25))
custom_hooks = [dict(type='SyntheticImageVisualizationHook', interval=25)]

# DeepInversion optimises pixels with Adam (lr 0.05-0.1 on CIFAR)
optim_wrapper = dict(
    constructor='SeparateOptimWrapperConstructor',
    architecture=dict(
        optimizer=dict(type='SGD', lr=0.05, momentum=0.9, weight_decay=5e-4)),
    generator=dict(optimizer=dict(type='Adam', lr=0.1, betas=(0.5, 0.99))))
param_scheduler = dict(
    architecture=dict(type='CosineAnnealingLR', by_epoch=False, eta_min=0))
