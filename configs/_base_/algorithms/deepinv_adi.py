# Adaptive DeepInversion (Yin et al., "Dreaming to Distill", CVPR 2020):
# each iteration optimises a fresh batch of learnable images for
# generator_iter Adam steps on
#   CE(T(x), y) + 10 * L_BN + 2.5e-5 * TV + 3e-5 * ||x||_2
#   + (1 - JS_tau=3(T(x), S(x)))     (ADI competition: weight -1 on JS)
# with random jitter, stores them in an in-memory bank and runs student KD
# steps on bank batches. Drop `loss_competition` for plain DeepInversion.
# Configs set architecture, teachers (key 'teacher'), the LearnableImages
# batch_size / image_shape / value_range, the bank capacity and step counts.
_logits = dict(type='ModuleOutputs', source='teacher.head.fc')
_student_logits = dict(logits=dict(type='ModuleOutputs', source='head.fc'))

model = dict(
    type='DeepInversionDistillation',
    generator=dict(type='LearnableImages'),
    memory_bank=dict(type='SyntheticMemoryBank'),
    jitter=2,
    flip=True,
    # the competition term scores images with the student in eval mode (as
    # the CMI/Fast code bases do): in train mode its BN running statistics
    # would follow every half-finished synthesis step
    student_train_mode_in_generator_step=False,
    generator_distiller=dict(
        type='ConfigurableDistiller',
        student_recorders=_student_logits,
        teacher_recorders=dict(
            bn=dict(type='BNStatisticsRecorder', source='teacher'),
            logits=_logits),
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
        student_recorders=_student_logits,
        teacher_recorders=dict(logits=_logits),
        distill_losses=dict(loss_kd=dict(type='KLDivergence', tau=20.0)),
        loss_forward_mappings=dict(
            loss_kd=dict(
                preds_S=dict(from_student=True, recorder='logits'),
                preds_T=dict(from_student=False, recorder='logits')))))

# pixels: Adam (lr 0.1 as in the CIFAR references); student: SGD + cosine
optim_wrapper = dict(
    constructor='SeparateOptimWrapperConstructor',
    architecture=dict(
        optimizer=dict(type='SGD', lr=0.1, momentum=0.9, weight_decay=1e-4)),
    generator=dict(optimizer=dict(type='Adam', lr=0.1, betas=(0.5, 0.99))))
# the pixels are re-drawn every iteration: their LR needs no schedule, but
# mmengine wants an entry per optimiser
param_scheduler = dict(
    architecture=dict(type='CosineAnnealingLR', by_epoch=False, eta_min=0),
    generator=[])
