# DFAD (Fang et al., "Data-Free Adversarial Distillation", arXiv 1912.11006):
# per iteration 5 student steps minimise the L1 logit discrepancy on fresh
# generator batches, then 1 generator step maximises it (L1, weight -1).
# GeneratorA: latent 256, hidden 128, Tanh + non-affine BN. Student SGD 0.1
# (momentum 0.9, wd 5e-4), generator Adam 1e-3. Configs set architecture,
# teachers (key 'teacher'), img_size / out_channels, and num_draws =
# student_iter + 1 of the latent dataset.
_logit_recorders = dict(
    student_recorders=dict(logits=dict(type='ModuleOutputs', source='head.fc')),
    teacher_recorders=dict(
        logits=dict(type='ModuleOutputs', source='teacher.head.fc')))
_logit_mapping = dict(
    s_feature=dict(from_student=True, recorder='logits'),
    t_feature=dict(from_student=False, recorder='logits'))

model = dict(
    type='DataFreeDistillation',
    generator=dict(
        type='DAFLGenerator',
        latent_dim=256,
        hidden_channels=128,
        bn_eps=1e-5,
        final_activation='tanh',
        final_norm='non_affine'),
    distiller=dict(
        type='ConfigurableDistiller',
        **_logit_recorders,
        distill_losses=dict(loss_l1=dict(type='L1Loss', loss_weight=1.0)),
        loss_forward_mappings=dict(loss_l1=_logit_mapping)),
    generator_distiller=dict(
        type='ConfigurableDistiller',
        **_logit_recorders,
        distill_losses=dict(loss_adv=dict(type='L1Loss', loss_weight=-1.0)),
        loss_forward_mappings=dict(loss_adv=_logit_mapping)),
    student_iter=5,
    generator_iter=1,
    student_train_first=True)

optim_wrapper = dict(
    constructor='SeparateOptimWrapperConstructor',
    architecture=dict(
        optimizer=dict(type='SGD', lr=0.1, momentum=0.9, weight_decay=5e-4)),
    generator=dict(optimizer=dict(type='Adam', lr=1e-3)))
