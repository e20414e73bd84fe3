# ZSKT (Micaelli & Storkey, "Zero-shot Knowledge Transfer via Adversarial
# Belief Matching", NeurIPS 2019): per iteration 1 generator step maximises
# KL(p_T || p_S) (weight -1, gradients through the teacher), then 10 student
# steps minimise KL(p_T || p_S) + 250 * attention transfer. Generator: latent
# 100, no Tanh, affine final BN. Adam 2e-3 for both, cosine annealing.
# Configs add the attention-transfer recorders/losses of their networks
# (ATLoss, weight 250, one per stage), set architecture, teachers (key
# 'teacher'), img_size / out_channels and num_draws = student_iter + 1.
_logits = dict(
    student_recorders=dict(logits=dict(type='ModuleOutputs', source='head.fc')),
    teacher_recorders=dict(
        logits=dict(type='ModuleOutputs', source='teacher.head.fc')))
_logits_mapping = dict(
    preds_S=dict(from_student=True, recorder='logits'),
    preds_T=dict(from_student=False, recorder='logits'))

model = dict(
    type='DataFreeDistillation',
    generator=dict(
        type='DAFLGenerator',
        latent_dim=100,
        hidden_channels=128,
        bn_eps=1e-5,
        final_activation=None,
        final_norm='affine'),
    distiller=dict(
        type='ConfigurableDistiller',
        **_logits,
        distill_losses=dict(loss_kl=dict(type='KLDivergence', tau=1.0)),
        loss_forward_mappings=dict(loss_kl=_logits_mapping)),
    generator_distiller=dict(
        type='ConfigurableDistiller',
        **_logits,
        distill_losses=dict(
            loss_adv=dict(
                type='KLDivergence',
                tau=1.0,
                loss_weight=-1.0,
                teacher_detach=False)),
        loss_forward_mappings=dict(loss_adv=_logits_mapping)),
    student_iter=10,
    generator_iter=1)

optim_wrapper = dict(
    constructor='SeparateOptimWrapperConstructor',
    architecture=dict(optimizer=dict(type='Adam', lr=2e-3)),
    generator=dict(optimizer=dict(type='Adam', lr=2e-3)))
param_scheduler = dict(
    architecture=dict(type='CosineAnnealingLR', by_epoch=False, eta_min=0),
    generator=dict(type='CosineAnnealingLR', by_epoch=False, eta_min=0))
