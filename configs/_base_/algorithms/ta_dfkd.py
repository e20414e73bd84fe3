# TA-DFKD (Shin & Choi, "Teacher as a Lenient Expert: Teacher-Agnostic
# Data-Free Knowledge Distillation", AAAI 2024, arXiv 2402.12406), the
# recipe of the official code (bigdata-inha/TA-DFKD-Official @5cb7f8a):
# per iteration 10 student steps, each on exactly B images that the teacher
# keeps (2-component GMM over its per-sample loss), minimising
#   L_S = mean |S(x) - T(x)|                                  (L1 logits)
# then 1 generator step on the kept images of a fresh batch, minimising
#   L_G = (1 - clamp(JS_tau=3(T, S), 0, 1)) + 10 L_BN + 1.5e-5 TV + 6e-3 L2
# with no class prior (no CE / one-hot). DAFL generator with latent 1000,
# BN eps 0.8 (DAFL's quirk), LeakyReLU after the input BN and a sigmoid:
# its [0, 1] pixels are normalised by the algorithm with the dataset's
# statistics. Student SGD 0.01 (momentum 0.9, wd 5e-4) with cosine decay,
# generator Adam 1e-3. Configs set architecture, teachers (key 'teacher'),
# the generator's img_size / out_channels, the batch size B, num_draws =
# student_iter + 1 and the L2 weight (see below).
_logits = dict(type='ModuleOutputs', source='teacher.head.fc')
_student_logits = dict(logits=dict(type='ModuleOutputs', source='head.fc'))

model = dict(
    type='TADFKDDistillation',
    generator=dict(
        type='DAFLGenerator',
        latent_dim=1000,
        hidden_channels=128,
        bn_eps=0.8,  # DAFL's quirk, kept: see DAFLGenerator
        final_activation='sigmoid',
        final_norm=None,
        act_after_input_bn=True),
    selection_threshold=0.5,
    gmm=dict(max_iter=10, tol=1e-2, reg_covar=5e-4),
    crop_padding=4,
    flip=True,
    # the paper's augmentation; False = the reference code's one crop and
    # one flip per batch
    per_sample_augmentation=True,
    max_generator_passes=8,
    student_iter=10,
    generator_iter=1,
    student_train_first=True,
    generator_distiller=dict(
        type='ConfigurableDistiller',
        student_recorders=_student_logits,
        teacher_recorders=dict(
            bn=dict(type='BNStatisticsRecorder', source='teacher'),
            logits=_logits),
        distill_losses=dict(
            # the reference's 1 - clamp(JS, 0, 1): probabilities clamped to
            # [0.01, 0.99] and KLDivLoss's element-wise mean (JS / C), which
            # sets its balance against the other weights. JS itself follows
            # its definition, KL(p||m) + KL(q||m); the code's
            # KL(m||p) + KL(m||q) is kl_direction='from_mixture'. The
            # teacher is not detached, as in the reference.
            loss_adv=dict(
                type='JSDivergence',
                tau=3.0,
                prob_clamp=(0.01, 0.99),
                reduction='mean',
                complement=True,
                loss_weight=1.0),
            loss_bn=dict(type='BNStatisticsLoss', loss_weight=10.0),
            loss_tv=dict(
                type='TotalVariationLoss', norm='l2', loss_weight=1.5e-5),
            # the reference weighs the norm of the whole batch tensor by
            # 6e-3 (reduction='batch'); the mean per-image norm weighed by
            # 6e-3 * sqrt(B) gives the same gradients for images of similar
            # norm and does not grow with the number of kept images:
            # dataset configs set it from their B
            loss_l2=dict(
                type='ImageL2NormLoss', reduction='mean', loss_weight=6e-3)),
        # every term sees the kept images (the reference applies TV and L2
        # to the whole generated batch: from_data='generated_images')
        loss_forward_mappings=dict(
            loss_adv=dict(
                preds_S=dict(from_student=True, recorder='logits'),
                preds_T=dict(from_student=False, recorder='logits')),
            loss_bn=dict(bn_stats=dict(from_student=False, recorder='bn')),
            loss_tv=dict(images=dict(from_data='images')),
            loss_l2=dict(images=dict(from_data='images')))),
    distiller=dict(
        type='ConfigurableDistiller',
        student_recorders=_student_logits,
        teacher_recorders=dict(logits=_logits),
        distill_losses=dict(loss_kd=dict(type='L1Loss', loss_weight=1.0)),
        loss_forward_mappings=dict(
            loss_kd=dict(
                s_feature=dict(from_student=True, recorder='logits'),
                t_feature=dict(from_student=False, recorder='logits')))))

optim_wrapper = dict(
    constructor='SeparateOptimWrapperConstructor',
    architecture=dict(
        optimizer=dict(type='SGD', lr=0.01, momentum=0.9, weight_decay=5e-4)),
    generator=dict(optimizer=dict(type='Adam', lr=1e-3)))
# cosine over the whole run (the reference steps it once per epoch); the
# generator's learning rate is constant, but mmengine wants an entry per
# optimiser
param_scheduler = dict(
    architecture=dict(type='CosineAnnealingLR', by_epoch=False, eta_min=0),
    generator=[])
