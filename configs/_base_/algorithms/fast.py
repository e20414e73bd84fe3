# Fast (Fang et al., "Up to 100x Faster Data-free Knowledge Distillation",
# AAAI 2022), the meta-synthesis recipe of Fast-Datafree's
# scripts/fast_cifar.sh (method fast_meta, is_maml 1, reset_l0 1). One
# iteration is one of the reference's epochs (FastDistillation):
#   synthesis task: fresh z ~ N(0, I) and uniform targets y (batch 256);
#     G' = copy of the meta-generator G; g_steps x (inner Adam(lr_g) on G',
#     Adam(lr_z) on z, betas (0.5, 0.999)):
#       L = 10 L_BN^m + oh CE(T(v), y) - adv 1/N sum_i m_i KL(p_T || p_S)
#       on v = normalise(crop4 + flip(G'(z, y))), L_BN^m the BN-statistics
#       loss with momentum 0.9, m_i = 1[argmax S = argmax T]
#     meta step on G: first-order MAML (sum of the inner gradients), Adam
#     with lr = lr_g * g_steps; the lowest-loss images go to the bank
#   400 student steps (after warm-up): batches of 256 from the bank, crop4 +
#     flip, 20^2 KL(p_T^20 || p_S^20), SGD 0.2 (momentum 0.9, wd 1e-4),
#     cosine over 200 iterations to 2e-4 after the warm-up
#   warm-up: the first 20 iterations only synthesise, without the
#     adversarial term
#   iteration 139 (the reference's 140th synthesis call, 120 + warm-up):
#     the first Linear and first BN of G are re-drawn from N(0, 0.02^2)
# 220 iterations in all: 56,320 synthetic images, all kept by the bank.
# Method configs set architecture, teachers (key 'teacher'), the variant
# (generator_iter = g_steps, inner_optimizer.lr = lr_g,
# latent_optimizer.lr = lr_z, optim_wrapper.generator lr = lr_g * g_steps),
# the teacher's weights (loss_oh, loss_adv), the latent batch
# (train_dataloader: batch 256, latent_dim 256, num_draws 1) and train_cfg
# (220 iterations; the references evaluate after every epoch).
_logits = dict(type='ModuleOutputs', source='teacher.head.fc')
_student_logits = dict(logits=dict(type='ModuleOutputs', source='head.fc'))
_logits_mapping = dict(
    preds_S=dict(from_student=True, recorder='logits'),
    preds_T=dict(from_student=False, recorder='logits'))

model = dict(
    type='FastDistillation',
    # Fast's Generator: z (256) -> Linear -> 128 x 8 x 8 -> BN -> up,
    # conv 128 (no bias), BN, LReLU -> up, conv 64 (no bias), BN, LReLU ->
    # conv 3 -> sigmoid; images in [0, 1], normalised by the augmentation
    generator=dict(
        type='DAFLGenerator',
        img_size=32,
        latent_dim=256,
        hidden_channels=128,
        out_channels=3,
        bn_eps=1e-5,
        final_activation='sigmoid',
        final_norm=None,
        conv_bias=False),
    # every image of the run (220 x 256), in memory as float16 (the
    # reference: uint8 PNGs); storage='disk' moves it out of RAM and out of
    # the checkpoints
    memory_bank=dict(
        type='SyntheticMemoryBank',
        capacity=220 * 256,
        policy='fifo',
        dtype='float16'),
    # kornia RandomCrop(32, padding=4) -> RandomHorizontalFlip -> Normalize
    # (mean/std of the data preprocessor), per image; the same for the
    # student's bank batches (the dataset's train transform)
    synthesis_augmentation=dict(
        type='SynthesisAugmentation', crop_padding=4, flip=True),
    meta_update=dict(
        type='MetaGeneratorUpdate', mode='fomaml', fomaml_gradient='sum'),
    inner_optimizer=dict(type='Adam', lr=2e-3, betas=(0.5, 0.999)),
    latent_optimizer=dict(type='Adam', lr=0.01, betas=(0.5, 0.999)),
    layer_reset_iter=139,
    layer_reset_modules=('fc', 'input_bn.0'),
    layer_reset_std=0.02,
    warmup_iters=20,
    warmup_disabled_losses=['loss_adv'],
    generator_iter=10,
    student_iter=400,
    # the adversarial term scores the synthesis views with the student in
    # eval mode (the reference's student.eval() during synthesis)
    student_train_mode_in_generator_step=False,
    generator_distiller=dict(
        type='ConfigurableDistiller',
        student_recorders=_student_logits,
        teacher_recorders=dict(
            bn=dict(type='BNStatisticsRecorder', source='teacher'),
            logits=_logits),
        distill_losses=dict(
            loss_bn=dict(
                type='BNStatisticsLoss', loss_weight=10.0, momentum=0.9),
            loss_oh=dict(type='CrossEntropyLoss', loss_weight=0.5),
            # decision-adversarial term: -adv * 1/N sum_i m_i KL(p_T||p_S)
            loss_adv=dict(
                type='AgreementMaskedKLDivergence',
                tau=1.0,
                loss_weight=-1.33,
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
        loss_forward_mappings=dict(loss_kd=_logits_mapping)))

# architecture: the student; generator: the meta-optimiser (lr_g * g_steps)
optim_wrapper = dict(
    constructor='SeparateOptimWrapperConstructor',
    architecture=dict(
        optimizer=dict(type='SGD', lr=0.2, momentum=0.9, weight_decay=1e-4)),
    generator=dict(
        optimizer=dict(type='Adam', lr=2e-3 * 10, betas=(0.5, 0.999))))
# cosine over 200 iterations (hard-coded T_max of the reference), stepped
# after each post-warm-up iteration (begin = warm-up + 1: the first student
# iteration runs at the initial rate, as in the reference); the
# meta-optimiser's rate is constant, but mmengine wants an entry per
# optimiser
param_scheduler = dict(
    architecture=dict(
        type='CosineAnnealingLR',
        by_epoch=False,
        begin=21,
        T_max=200,
        eta_min=2e-4),
    generator=[])
