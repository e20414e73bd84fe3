# NAYER (Tran et al., "NAYER: Noisy Layer Data Generation for Efficient and
# Effective Data-free Knowledge Distillation", CVPR 2024), the recipe of
# its scripts/nayer_100.sh for CIFAR: Fast's synthesis loop without the
# meta-learning (FastDistillation with meta_update=None). One iteration is
# one of the reference's epochs:
#   every 10 iterations (g_life): the whole generator is re-initialised
#   synthesis_loops x (2; 10 during the 20 warm-up iterations):
#     targets: 400 // C blocks 0..C-1, then 400 % C random classes
#     a new Adam(4e-3, betas (0.5, 0.999)) and the noisy layers re-drawn
#     from N(0, 1) with zero bias
#     g_steps x: x = G(e_y) (label-text embedding e_y -> BN1d -> the noisy
#       layer of its chunk of C samples -> Fast's generator -> sigmoid),
#       L = 10 L_BN^m + 0.5 CE(T(v), y) - 1.33 1/N sum_i m_i KL(p_T||p_S)
#       on v = normalise(crop4 + flip(x)), momentum 0.9, m_i = 1[argmax S
#       = argmax T] (the adversarial term is off during warm-up)
#     the lowest-loss images go to the bank
#   400 student steps (after warm-up): batches of 512 from the bank, crop4
#     + flip, 20^2 KL(p_T^20 || p_S^20), SGD 0.2 (momentum 0.9, wd 1e-4),
#     cosine over the 100 post-warm-up iterations to 2e-4
# NAYER-100: 120 iterations, (20 x 10 + 100 x 2) x 400 = 160,000 images.
# Method configs set architecture, teachers (key 'teacher'), the label
# embeddings (generator.label_embeddings), g_steps (generator_iter: 30 for
# CIFAR-10, 40 for CIFAR-100), where the bank's shards live, the target
# batch (train_dataloader: batch 400, latent_dim 0 (no latent code),
# num_draws 10 = the warm-up's synthesis loops) and train_cfg (120
# iterations).
_logits = dict(type='ModuleOutputs', source='teacher.head.fc')
_student_logits = dict(logits=dict(type='ModuleOutputs', source='head.fc'))
_logits_mapping = dict(
    preds_S=dict(from_student=True, recorder='logits'),
    preds_T=dict(from_student=False, recorder='logits'))

model = dict(
    type='FastDistillation',
    generator=dict(
        type='NoisyLayerGenerator',
        batch_size=400,
        img_size=32,
        out_channels=3,
        hidden_channels=64,
        noise_dim=1000),
    # every image of NAYER-100, as float16 shards on disk (0.98 GB for
    # CIFAR; the reference writes uint8 PNGs and re-scans the folder)
    memory_bank=dict(
        type='SyntheticMemoryBank',
        capacity=(20 * 10 + 100 * 2) * 400,
        policy='fifo',
        storage='disk',
        dtype='float16'),
    synthesis_augmentation=dict(
        type='SynthesisAugmentation', crop_padding=4, flip=True),
    meta_update=None,  # the generator is trained in place
    target_layout='balanced',
    warmup_iters=20,
    warmup_disabled_losses=['loss_adv'],
    synthesis_loops=2,
    warmup_synthesis_loops=10,
    generator_reinit_interval=10,
    reset_generator_optimizer_every_loop=True,
    redraw_noisy_layers=True,
    generator_iter=30,
    student_iter=400,
    student_batch_size=512,
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
            # NAYER's soft-target CE with one-hot targets: plain CE
            loss_oh=dict(type='CrossEntropyLoss', loss_weight=0.5),
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

optim_wrapper = dict(
    constructor='SeparateOptimWrapperConstructor',
    architecture=dict(
        optimizer=dict(type='SGD', lr=0.2, momentum=0.9, weight_decay=1e-4)),
    generator=dict(
        optimizer=dict(type='Adam', lr=4e-3, betas=(0.5, 0.999))))
# cosine over the post-warm-up iterations (T_max = epochs - warm-up),
# stepped after each of them (begin = warm-up + 1)
param_scheduler = dict(
    architecture=dict(
        type='CosineAnnealingLR',
        by_epoch=False,
        begin=21,
        T_max=100,
        eta_min=2e-4),
    generator=[])
