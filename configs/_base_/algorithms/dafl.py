# DAFL (Chen et al., "Data-Free Learning of Student Networks", ICCV 2019):
# the generator makes the teacher confident (one-hot), strongly activated
# (activation) and class-balanced (information entropy); the student learns
# with KD on the same, detached batch. Weights: the paper's MNIST ones.
# Configs set architecture, teachers (key 'teacher') and the generator's
# img_size / out_channels / latent_dim.
model = dict(
    type='DataFreeDistillation',
    generator=dict(
        type='DAFLGenerator',
        hidden_channels=128,
        bn_eps=0.8,  # DAFL's quirk, kept: see DAFLGenerator
        final_activation='tanh',
        final_norm='non_affine'),
    generator_distiller=dict(
        type='ConfigurableDistiller',
        teacher_recorders=dict(
            logits=dict(type='ModuleOutputs', source='teacher.head.fc'),
            features=dict(type='ModuleInputs', source='teacher.head.fc')),
        distill_losses=dict(
            loss_onehot=dict(type='OnehotLikeLoss', loss_weight=1.0),
            loss_activation=dict(type='ActivationLoss', loss_weight=0.1),
            loss_entropy=dict(type='InformationEntropyLoss', loss_weight=5.0)),
        loss_forward_mappings=dict(
            loss_onehot=dict(
                preds_T=dict(from_student=False, recorder='logits')),
            loss_activation=dict(
                feat_T=dict(from_student=False, recorder='features')),
            loss_entropy=dict(
                preds_T=dict(from_student=False, recorder='logits')))),
    distiller=dict(
        type='ConfigurableDistiller',
        student_recorders=dict(
            logits=dict(type='ModuleOutputs', source='head.fc')),
        teacher_recorders=dict(
            logits=dict(type='ModuleOutputs', source='teacher.head.fc')),
        distill_losses=dict(loss_kd=dict(type='KLDivergence', tau=1.0)),
        loss_forward_mappings=dict(
            loss_kd=dict(
                preds_S=dict(from_student=True, recorder='logits'),
                preds_T=dict(from_student=False, recorder='logits')))),
    generator_iter=1,
    student_iter=1,
    reuse_generator_batch=True)
