# Fashion-MNIST train + test sets, for training the teacher on real data.
# `data_root`, the pipeline and the normalisation (`data_preprocessor`) come
# from the evaluation-only base, so that they live in one place.
_base_ = ['./fashionmnist_eval.py']

train_dataloader = dict(
    batch_size=256,
    # in-process loading: a worker process sends every sample's tensor
    # through its own shared-memory segment, which makes 28x28 images about
    # ten times slower to load than with num_workers=0
    num_workers=0,
    persistent_workers=False,
    sampler=dict(type='DefaultSampler', shuffle=True),
    dataset=dict(
        type={{_base_.dataset_type}},
        data_root={{_base_.data_root}},
        split='train',
        download=False,
        pipeline={{_base_.pipeline}}))
