# AdaDFKD (Li et al., "Exploring Adaptive Inter-Sample Relationship in
# Data-Free Knowledge Distillation", Neural Networks 2024, doi
# 10.1016/j.neunet.2024.106386), the recipe of the official code
# (github.com/ljrprocc/DFKD, datafree/synthesis/adadfkd.py, datafree_kd.py)
# with its CIFAR-10 ResNet-34 -> ResNet-18 script (scripts/adadfkd/adadfkd_
# cifar10_resnet34_resnet18.sh). AdaDFKD is CuDFKD (./cudfkd.py: generator,
# class-balance / one-hot / BN / adversarial terms, self-paced student, 40
# iterations per epoch of 1 generator step + 10 student steps on fresh
# batches) plus two relation terms on the penultimate features f_t, f_s:
#   L_G += hard * L_R2M:  query f_t (gradient into G through the teacher),
#          positive key P f_s (detached), negatives a queue of N_neg past
#          student keys sorted by similarity, of which the window
#          [h K, (h + length) K] is kept; CE over [pos, kept] / tau; then
#          the keys are enqueued
#   L_S  = mean_i v(l_i; lambda) * l_i,
#          l_i = KD(s_i, t_i) + s_nce * InfoNCE_i   (teacher -> student
#          cosine similarities of the batch / tau, diagonal labels)
#   h(epoch) = clip((1 - length)(epoch - int(bE)) / int((e - b)E), 0,
#                   1 - length)
# CIFAR-10 script: batch 768, 300 epochs, KD distance KL at T 20, lambda_0
# 2.2 (+1e-4 per student step), length 0.9, N_neg 4096, tau 0.07, hard 0.1,
# s_nce 0.1, b/e 0.25/0.75, a constant adversarial weight 1.
# P: a fixed seeded semi-orthogonal map from the student's feature width to
# the teacher's (the identity when they agree; RelationFeatureProjection),
# where the code draws a new random nn.Linear at every call.
# Configs set the feature widths (feature_dim: teacher, student_feature_dim:
# student), the window curriculum of their epoch count and the script's
# settings, besides what ./cudfkd.py asks for.
_base_ = ['./cudfkd.py']

_teacher_features = dict(type='ModuleInputs', source='teacher.head.fc')
_student_features = dict(type='ModuleInputs', source='head.fc')
_features_mapping = dict(
    feats_S=dict(from_student=True, recorder='features'),
    feats_T=dict(from_student=False, recorder='features'))

# the window curriculum of the CIFAR-10 script (300 epochs of 40 iterations)
_epochs, _length, _begin, _end = 300, 0.9, 0.25, 0.75
_window_epochs = int((_end - _begin) * _epochs)

model = dict(
    type='AdaDFKDDistillation',
    generator_distiller=dict(
        student_recorders=dict(features=_student_features),
        teacher_recorders=dict(features=_teacher_features),
        distill_losses=dict(
            loss_r2m=dict(
                type='RelationRefinementLoss',
                feature_dim=512,
                student_feature_dim=512,
                queue_size=4096,
                temperature=0.07,
                window_length=_length,
                loss_weight=0.1)),
        loss_forward_mappings=dict(
            loss_r2m=dict(
                query=dict(from_student=False, recorder='features'),
                key=dict(from_student=True, recorder='features')))),
    # every AdaDFKD script keeps the adversarial weight constant
    loss_weight_schedules=dict(
        loss_adv=dict(start=1.0, slope=0.0, begin=0, end=0)),
    negative_window_schedules=dict(
        loss_r2m=dict(
            type='LinearWeightCurriculum',
            start=0.0,
            slope=(1 - _length) / _window_epochs,
            begin=int(_begin * _epochs),
            end=int(_begin * _epochs) + _window_epochs,
            iters_per_epoch=40)),
    distiller=dict(
        student_recorders=dict(features=_student_features),
        teacher_recorders=dict(features=_teacher_features),
        distill_losses=dict(
            loss_kd=dict(
                type='SelfPacedInfoNCEDistillationLoss',
                distance='kl',
                tau=20.0,
                self_paced=dict(lambda_0=2.2, alpha=1e-4),
                info_nce=dict(
                    feature_dim=512,
                    student_feature_dim=512,
                    temperature=0.07,
                    loss_weight=0.1))),
        loss_forward_mappings=dict(loss_kd=_features_mapping)))
