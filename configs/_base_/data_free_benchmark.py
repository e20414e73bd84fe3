# Everything a data-free run on a benchmark dataset (CIFAR-10/100,
# Tiny-ImageNet) shares: runtime, latent noise as the training data,
# iteration-based loops, the student's accuracy and its agreement with the
# teacher on the real test set. ./data_free_<dataset>.py adds the test set.
_base_ = [
    './default_runtime.py',
    './datasets/latent_noise.py',
]

train_cfg = dict(type='IterBasedTrainLoop', max_iters=25000, val_interval=250)
val_cfg = dict(type='ValLoop')
test_cfg = dict(type='TestLoop')
# top-1/top-5 of the student and its top-1 agreement with the teacher
val_evaluator = [
    dict(type='Accuracy', topk=(1, 5)),
    dict(type='Agreement'),
]
test_evaluator = val_evaluator
default_hooks = dict(
    logger=dict(interval=50),
    checkpoint=dict(interval=1000, max_keep_ckpts=2, save_best='auto'))
