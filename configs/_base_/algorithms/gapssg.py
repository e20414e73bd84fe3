# GapSSG (Wang, Qian, Liu, Rui, Wang, "Unpacking the Gap Box Against
# Data-Free Knowledge Distillation", T-PAMI 2024) with the recipe of the
# authors' only released script (github.com/hfutqian/GapSSG,
# scripts/gapssg/cifar100_resnet34_mobilenetv2.sh), a CMI-style inversion
# loop. One iteration = one reference epoch (FastDistillation without a
# meta-generator):
#   re-initialise the generator (N(0, 0.02) weights, BN N(1, 0.02), the
#   reference's reset_model), draw z and random targets y, then 200 Adam
#   steps (lr 2e-3, betas (0.5, 0.999)) on G and z of
#     L_G = L_BN + 0.5 (1 - exp(-g)) (CE((t - s)/2, y) + 0.2 CE(t + s, y))
#   on the global view v = normalise(crop4 + flip(G(z))) with t = T(v),
#   s = S(v) (student frozen, eval mode) and
#   g = mean_i max_c |softmax(s_i)_c - softmax(t_i)_c| (no gradient);
#   the lowest-loss iterate goes to the memory bank; then
#   4 (t + 1) student steps at iteration t (the reference's 2*2*(epoch+1)):
#   KD (tau 20) on bank batches of 128 with crop4 + flip.
# Student: SGD 0.2 (momentum 0.9, wd 1e-4), cosine to 0 over the run.
# See RealityGapLoss (mmdfkd/models/losses/reality_gap_loss.py) and
# configs/gapssg/README.md. Configs set architecture, teachers (key
# 'teacher'), data_preprocessor (its mean/std normalise the [0, 1] images),
# the generator's img_size / out_channels, the bank capacity, the latent
# batch (256, latent_dim 256, num_draws 1) and the schedule.
_logits = dict(type='ModuleOutputs', source='teacher.head.fc')
_student_logits = dict(logits=dict(type='ModuleOutputs', source='head.fc'))
_logits_mapping = dict(
    preds_S=dict(from_student=True, recorder='logits'),
    preds_T=dict(from_student=False, recorder='logits'))

model = dict(
    type='FastDistillation',
    # the reference's (CMI's) Generator(nz=256, ngf=64): 128 channels at
    # img/4, no conv bias, sigmoid output in [0, 1]; re-drawn before every
    # synthesised batch with this init_cfg
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
    # in memory (the reference: uint8 PNGs re-scanned after every batch);
    # configs size it to keep every image of the run
    memory_bank=dict(type='SyntheticMemoryBank', policy='fifo'),
    # kornia RandomCrop(pad 4) -> RandomHorizontalFlip -> Normalize for the
    # synthesis (global) view and for the student's bank batches (the
    # dataset's train transform); normalised with the data preprocessor's
    # mean and std
    synthesis_augmentation=dict(
        type='SynthesisAugmentation', crop_padding=4, flip=True),
    # z is optimised with G (Adam over [G, z] in the reference: Adam acts
    # per element, so a separate Adam with the same settings is the same)
    latent_optimizer=dict(type='Adam', lr=2e-3, betas=(0.5, 0.999)),
    reinit_generator_every_loop=True,
    synthesis_loops=1,
    generator_iter=200,
    student_iter=4,
    student_iter_increment=4,
    student_batch_size=128,
    student_train_mode_in_generator_step=False,
    generator_distiller=dict(
        type='ConfigurableDistiller',
        student_recorders=_student_logits,
        teacher_recorders=dict(
            bn=dict(type='BNStatisticsRecorder', source='teacher'),
            logits=_logits),
        distill_losses=dict(
            loss_bn=dict(type='BNStatisticsLoss', loss_weight=1.0),
            # derived gap CE((t - s)/2, y) + 0.2 * inherent gap CE(t + s, y),
            # weighted by 0.5 (1 - exp(-g))
            loss_gap=dict(
                type='RealityGapLoss',
                adaptive_weight_scale=0.5,
                inherent_gap_weight=0.2)),
        loss_forward_mappings=dict(
            loss_bn=dict(bn_stats=dict(from_student=False, recorder='bn')),
            loss_gap=dict(_logits_mapping, targets=dict(from_data='targets'))
        )),
    distiller=dict(
        type='ConfigurableDistiller',
        student_recorders=_student_logits,
        teacher_recorders=dict(logits=_logits),
        distill_losses=dict(loss_kd=dict(type='KLDivergence', tau=20.0)),
        loss_forward_mappings=dict(loss_kd=_logits_mapping)))

optim_wrapper = dict(
    constructor='SeparateOptimWrapperConstructor',
    architecture=dict(
        optimizer=dict(type='SGD', lr=0.2, momentum=0.9, weight_decay=1e-4)),
    generator=dict(
        optimizer=dict(type='Adam', lr=2e-3, betas=(0.5, 0.999))))
# the reference steps its cosine schedule once per epoch (= iteration here),
# to 0 over the run; the generator's rate is constant, but mmengine wants
# an entry per optimiser
param_scheduler = dict(
    architecture=dict(type='CosineAnnealingLR', by_epoch=False, eta_min=0),
    generator=[])
