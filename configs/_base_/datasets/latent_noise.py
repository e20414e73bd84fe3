# The data-free "training set": latent noise and target labels generated
# from a seeded RNG per index (LatentNoiseDataset). Method configs set
# latent_dim, num_classes and num_draws (= draws one iteration consumes).
train_dataloader = dict(
    batch_size=256,
    num_workers=0,
    sampler=dict(type='InfiniteSampler', shuffle=True),
    collate_fn=dict(type='default_collate'),
    dataset=dict(
        type='LatentNoiseDataset', latent_dim=100, num_classes=10,
        num_draws=1))
