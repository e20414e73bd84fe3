# CMI (Fang et al., "Contrastive Model Inversion for Data-Free Knowledge
# Distillation", IJCAI 2021, arXiv 2105.08584) with the recipe of the
# reference's scratch script (github.com/zju-vipa/CMI,
# scripts/cmi/scratch_cmi_cifar10_wrn402_wrn161.sh, WRN-40-2 -> WRN-16-1).
# One iteration = one reference epoch:
#   re-initialise the generator (N(0, 0.02) weights, BN N(1, 0.02), as the
#   reference's reset_model), draw z and sorted random targets y, then
#   200 Adam steps (lr 1e-3, betas (0.5, 0.999)) on G and z of
#     L = L_BN + CE(T(x_g), y)
#         - 0.5 * mean_i[1{argmax S = argmax T} KL(p_T || p_S)]   (tau 1)
#         + 0.8 * L_cr(tau 0.1, 4096 negatives from a 40,960-row bank)
#   on the global view x_g (crop with 4-px padding, flip) and the local view
#   (random resized crop of scale 0.25-1, flip); the best iterate goes to the
#   image pool and its features to the feature bank; then 400 student steps
#   of KD (tau 20) on pool batches of 128 with the train augmentation.
# Student: SGD 0.1 (momentum 0.9, wd 1e-4), cosine to 0 over the run; the
# projection head (Linear(d, d), ReLU, Linear(d, 256)) has its own Adam
# (lr 1e-3) for the whole run. See mmdfkd/models/algorithms/cmi.py.
# Configs set architecture, teachers (key 'teacher'), data_preprocessor (its
# mean/std normalise the [0, 1] images), the generator's img_size /
# out_channels, the pool capacity, batch size 256 with latent_dim 256 and
# num_draws 1, and the schedule.
_logits = dict(type='ModuleOutputs', source='teacher.head.fc')
_student_logits = dict(logits=dict(type='ModuleOutputs', source='head.fc'))
_logits_mapping = dict(
    preds_S=dict(from_student=True, recorder='logits'),
    preds_T=dict(from_student=False, recorder='logits'))
# crop with 4-px zero padding and flip (kornia's RandomCrop + flip in the
# reference; the same as its torchvision train transform for the pool)
_global_view = dict(type='SynthesisAugmentation', crop_padding=4, flip=True)

model = dict(
    type='CMIDistillation',
    # the reference's Generator(nz=256, ngf=64): 128 channels at img/4, no
    # conv bias, sigmoid output in [0, 1]
    generator=dict(
        type='DAFLGenerator',
        latent_dim=256,
        hidden_channels=128,
        bn_eps=1e-5,
        final_activation='sigmoid',
        final_norm=None,
        conv_bias=False,
        init_cfg=[
            dict(type='Normal', layer=['Conv2d', 'Linear'], std=0.02,
                 bias=0),
            dict(type='Normal', layer='BatchNorm2d', mean=1.0, std=0.02,
                 bias=0)
        ]),
    memory_bank=dict(type='SyntheticMemoryBank', policy='fifo'),
    feature_bank=dict(type='InstanceFeatureBank', capacity=40960),
    contrastive_head=dict(
        type='MoCoV2Neck', out_channels=256, with_avg_pool=False),
    contrastive_loss=dict(
        type='InstanceContrastiveLoss', temperature=0.1, loss_weight=0.8),
    num_negatives=4096,
    global_view=_global_view,
    local_view=dict(
        type='SynthesisAugmentation',
        crop_padding=0,
        resized_crop=dict(scale=(0.25, 1.0)),
        flip=True),
    student_augmentation=_global_view,
    student_batch_size=128,
    generator_distiller=dict(
        type='ConfigurableDistiller',
        student_recorders=_student_logits,
        teacher_recorders=dict(
            bn=dict(type='BNStatisticsRecorder', source='teacher'),
            logits=_logits),
        distill_losses=dict(
            loss_bn=dict(type='BNStatisticsLoss', loss_weight=1.0),
            loss_oh=dict(type='CrossEntropyLoss', loss_weight=1.0),
            loss_adv=dict(
                type='AgreementMaskedKLDivergence',
                tau=1.0,
                loss_weight=-0.5,
                teacher_detach=False)),
        loss_forward_mappings=dict(
            loss_bn=dict(bn_stats=dict(from_student=False, recorder='bn')),
            loss_oh=dict(
                cls_score=dict(from_student=False, recorder='logits'),
                label=dict(from_data='targets')),
            loss_adv=_logits_mapping)),
    distiller=dict(
        type='ConfigurableDistiller',
        student_recorders=_student_logits,
        teacher_recorders=dict(logits=_logits),
        distill_losses=dict(loss_kd=dict(type='KLDivergence', tau=20.0)),
        loss_forward_mappings=dict(loss_kd=_logits_mapping)),
    generator_iter=200,
    student_iter=400,
    synthesis_loops=1,
    draw_per_synthesis_loop=True,
    reinit_generator_every_loop=True,
    student_train_mode_in_generator_step=False)

optim_wrapper = dict(
    constructor='SeparateOptimWrapperConstructor',
    architecture=dict(
        optimizer=dict(type='SGD', lr=0.1, momentum=0.9, weight_decay=1e-4)),
    generator=dict(
        optimizer=dict(type='Adam', lr=1e-3, betas=(0.5, 0.999))),
    contrastive_head=dict(optimizer=dict(type='Adam', lr=1e-3)))
# the reference steps its cosine schedule once per epoch (= iteration here);
# generator and head keep constant learning rates, but mmengine wants an
# entry per optimiser
param_scheduler = dict(
    architecture=dict(type='CosineAnnealingLR', by_epoch=False, eta_min=0),
    generator=[],
    contrastive_head=[])
