# DFQ (Choi et al., "Data-Free Network Quantization With Adversarial
# Knowledge Distillation", CVPRW 2020, arXiv 2005.04136) with the recipe of
# the CMI code base (github.com/zju-vipa/CMI, GenerativeSynthesizer and
# scripts/dfq/*.sh; Fast-Datafree's DFQ baseline is the same code).
# Per iteration (one of 40 per epoch): 1 generator step, then 10 student
# steps, each on a fresh generator batch of B:
#   L_G = L_BN + CE(t, argmax t) + 20 * (-H(mean_i softmax(t_i)))
#         - KL(p_T || p_S)                      (adversarial, tau 1)
#   L_S = 20^2 * KL(p_T^20 || p_S^20)           (KD, tau 20)
# L_BN: DeepInversion's BN-statistics norm on every teacher BN layer.
# Paper over reference: the CMI and Fast code hand the teacher to the
# synthesiser as the "student" (student=teacher), so their adversarial term
# is KL(p_T || p_T) = 0; we use the real student, as the paper does. Set
# model.generator_distiller.distill_losses.loss_adv.loss_weight=0 to
# reproduce the reference runs. The student scores the generator's images
# in eval mode and frozen (Fast's GenerativeSynthesizer).
# Generator: the Fast/CMI DCGAN (latent 256, 128 channels at img/4, no conv
# bias, sigmoid); its [0, 1] images are normalised with the dataset's mean
# and std (configs set generator.output_normalization). It stays in train
# mode (batch BN statistics) for the student's batches, as in the reference.
# Adam 1e-3, betas (0.5, 0.999); student SGD 0.1 (momentum 0.9, wd 1e-4),
# x0.1 at epochs 120, 150, 180 of 200 (iterations 4800, 6000, 7200).
# Configs set architecture, teachers (key 'teacher'), the generator's
# img_size / out_channels / output_normalization, batch size 256, latent
# dim 256, num_draws 11 (1 + 10 draws per iteration) and the schedule.
_logits = dict(type='ModuleOutputs', source='teacher.head.fc')
_student_logits = dict(logits=dict(type='ModuleOutputs', source='head.fc'))
_logits_mapping = dict(
    preds_S=dict(from_student=True, recorder='logits'),
    preds_T=dict(from_student=False, recorder='logits'))

model = dict(
    type='DataFreeDistillation',
    generator=dict(
        type='DAFLGenerator',
        latent_dim=256,
        hidden_channels=128,
        bn_eps=1e-5,
        final_activation='sigmoid',
        final_norm=None,
        conv_bias=False),
    generator_distiller=dict(
        type='ConfigurableDistiller',
        student_recorders=_student_logits,
        teacher_recorders=dict(
            bn=dict(type='BNStatisticsRecorder', source='teacher'),
            logits=_logits),
        distill_losses=dict(
            loss_bn=dict(type='BNStatisticsLoss', loss_weight=1.0),
            loss_onehot=dict(type='OnehotLikeLoss', loss_weight=1.0),
            loss_balance=dict(type='InformationEntropyLoss', loss_weight=20.0),
            loss_adv=dict(
                type='KLDivergence',
                tau=1.0,
                loss_weight=-1.0,
                teacher_detach=False)),
        loss_forward_mappings=dict(
            loss_bn=dict(bn_stats=dict(from_student=False, recorder='bn')),
            loss_onehot=dict(
                preds_T=dict(from_student=False, recorder='logits')),
            loss_balance=dict(
                preds_T=dict(from_student=False, recorder='logits')),
            loss_adv=_logits_mapping)),
    distiller=dict(
        type='ConfigurableDistiller',
        student_recorders=_student_logits,
        teacher_recorders=dict(logits=_logits),
        distill_losses=dict(loss_kd=dict(type='KLDivergence', tau=20.0)),
        loss_forward_mappings=dict(loss_kd=_logits_mapping)),
    generator_iter=1,
    student_iter=10,
    student_train_mode_in_generator_step=False)

optim_wrapper = dict(
    constructor='SeparateOptimWrapperConstructor',
    architecture=dict(
        optimizer=dict(type='SGD', lr=0.1, momentum=0.9, weight_decay=1e-4)),
    generator=dict(
        optimizer=dict(type='Adam', lr=1e-3, betas=(0.5, 0.999))))
# the generator's learning rate is constant, but mmengine wants an entry per
# optimiser
param_scheduler = dict(
    architecture=dict(
        type='MultiStepLR', milestones=[4800, 6000, 7200], by_epoch=False),
    generator=[])
