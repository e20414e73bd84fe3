# Fashion-MNIST train + test sets, for training the teacher on real data.
_base_ = ['./fashionmnist_eval.py']

train_dataloader = dict(
    batch_size=256,
    num_workers=1,
    persistent_workers=False,
    sampler=dict(type='DefaultSampler', shuffle=True),
    dataset=dict(
        type='FashionMNIST',
        data_root='data/fashion_mnist',
        split='train',
        download=False,
        pipeline={{_base_.pipeline}}))

