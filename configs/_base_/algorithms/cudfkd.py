# CuDFKD (Li et al., "Dynamic Data-Free Knowledge Distillation by
# Easy-to-Hard Learning Strategy", Information Sciences 2023, arXiv
# 2208.13648), the recipe of the official code (github.com/ljrprocc/DFKD,
# datafree/synthesis/cudfkd.py, datafree_kd.py) with its CIFAR-10
# ResNet-34 -> ResNet-18 script (scripts/cudfkd/cudfkd_cifar10_resnet34_
# resnet18.sh). Per iteration (one of 40 per epoch): 1 generator step, then
# 10 student steps, each on a fresh generator batch of B (z ~ N(0, I)):
#   L_G = 20 * (-H(mean_i softmax(t_i / T))) + CE(t, argmax t) + L_BN
#         - adv(epoch) * 3^2 * mean_i m_i KL(p_T^3 || p_S^3)
#   L_S = mean_i v(l_i; lambda) * l_i,   l_i = mean_c |s_ic - t_ic|  (L1)
# with T = 20 (the KD temperature; the code softens the class-balance term
# with it), m_i = 1[student and teacher agree on x_i], L_BN DeepInversion's
# BN-statistics norm, the adversarial weight adv rising by 0.5 per epoch
# from epoch 63 to 188 of 250 (the code's begin/end fractions 0.25/0.75,
# applied one epoch late as the code does) and the self-paced weight
#   v = (1 + e^-lambda) / (1 + e^(l - lambda)),
#   lambda = 2.0 + 1e-4 * (student steps so far)
# computed without gradient, one weight per sample (per_sample=False: the
# code's one weight for the batch-mean loss). The student and teacher are in
# eval mode in the generator step; the generator is in eval mode (running
# BN statistics) when it makes the student's batches.
# Generator: the code's DCGAN_Generator_CIFAR10 (depth 2, ngf 64): latent
# 512 -> 256 channels at img/4 -> 128 -> 64 -> sigmoid, weights N(0, 0.02),
# BN weights N(1, 0.02), biases 0; its [0, 1] images are normalised with the
# dataset's mean and std (configs set generator.output_normalization).
# Adam 1e-3, betas (0.9, 0.99); student SGD 0.1 (momentum 0.9, wd 1e-4)
# with cosine decay over the run.
# Configs set architecture, teachers (key 'teacher'), the generator's
# img_size / out_channels / output_normalization, the batch size, latent
# dim 512, num_draws 11 and the schedule; they change T, lambda_0, alpha,
# the KD distance and the adversarial curriculum where a script does.
_logits = dict(type='ModuleOutputs', source='teacher.head.fc')
_student_logits = dict(logits=dict(type='ModuleOutputs', source='head.fc'))
_logits_mapping = dict(
    preds_S=dict(from_student=True, recorder='logits'),
    preds_T=dict(from_student=False, recorder='logits'))

model = dict(
    type='CuDFKDDistillation',
    generator=dict(
        type='DAFLGenerator',
        latent_dim=512,
        hidden_channels=256,
        halve_channels=True,
        bn_eps=1e-5,
        final_activation='sigmoid',
        final_norm=None,
        conv_bias=False,
        init_cfg=[
            dict(type='Normal', layer=['Conv2d', 'Linear'], std=0.02, bias=0),
            dict(type='Normal', layer='BatchNorm2d', mean=1.0, std=0.02,
                 bias=0)
        ]),
    generator_distiller=dict(
        type='ConfigurableDistiller',
        student_recorders=_student_logits,
        teacher_recorders=dict(
            bn=dict(type='BNStatisticsRecorder', source='teacher'),
            logits=_logits),
        distill_losses=dict(
            loss_balance=dict(
                type='InformationEntropyLoss', tau=20.0, loss_weight=20.0),
            loss_onehot=dict(type='OnehotLikeLoss', loss_weight=1.0),
            loss_bn=dict(type='BNStatisticsLoss', loss_weight=1.0),
            # scaled by the curriculum below: weight -1 x adv(epoch)
            loss_adv=dict(
                type='AgreementMaskedKLDivergence',
                tau=3.0,
                loss_weight=-1.0,
                teacher_detach=False)),
        loss_forward_mappings=dict(
            loss_balance=dict(
                preds_T=dict(from_student=False, recorder='logits')),
            loss_onehot=dict(
                preds_T=dict(from_student=False, recorder='logits')),
            loss_bn=dict(bn_stats=dict(from_student=False, recorder='bn')),
            loss_adv=_logits_mapping)),
    loss_weight_schedules=dict(
        loss_adv=dict(
            type='LinearWeightCurriculum',
            start=0.0,
            slope=0.5,
            begin=63,
            end=188,
            iters_per_epoch=40)),
    distiller=dict(
        type='ConfigurableDistiller',
        student_recorders=_student_logits,
        teacher_recorders=dict(logits=_logits),
        distill_losses=dict(
            loss_kd=dict(
                type='SelfPacedDistillationLoss',
                distance='l1',
                tau=20.0,
                per_sample=True,
                self_paced=dict(
                    lambda_0=2.0, alpha=1e-4, regularizer='log'))),
        loss_forward_mappings=dict(loss_kd=_logits_mapping)),
    generator_iter=1,
    student_iter=10,
    student_train_mode_in_generator_step=False,
    generator_train_mode_in_student_step=False)

optim_wrapper = dict(
    constructor='SeparateOptimWrapperConstructor',
    architecture=dict(
        optimizer=dict(type='SGD', lr=0.1, momentum=0.9, weight_decay=1e-4)),
    generator=dict(
        optimizer=dict(type='Adam', lr=1e-3, betas=(0.9, 0.99))))
# cosine over the whole run (the code steps it once per epoch); the
# generator's learning rate is constant, but mmengine wants an entry per
# optimiser
param_scheduler = dict(
    architecture=dict(type='CosineAnnealingLR', by_epoch=False, eta_min=0),
    generator=[])
