# Everything a data-free Fashion-MNIST CPU config shares: runtime, latent
# noise as the training data, the real test set for evaluation only, and an
# iteration-based schedule.
_base_ = [
    './default_runtime.py',
    './datasets/latent_noise.py',
    './datasets/fashionmnist_eval.py',
]

train_cfg = dict(type='IterBasedTrainLoop', max_iters=1500, val_interval=250)
val_cfg = dict(type='ValLoop')
test_cfg = dict(type='TestLoop')
# student accuracy and student-teacher top-1 agreement on the real test set
val_evaluator = [
    dict(type='Accuracy', topk=(1, )),
    dict(type='Agreement'),
]
test_evaluator = val_evaluator
default_hooks = dict(
    logger=dict(interval=50),
    checkpoint=dict(interval=250, max_keep_ckpts=1, save_best='auto'))
