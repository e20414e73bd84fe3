"""A MoCo-style queue of unit-norm keys (AdaDFKD's queue of negatives)."""
import torch
import torch.nn.functional as F

from mmdfkd.registry import MODELS

from .instance_feature_bank import InstanceFeatureBank


@MODELS.register_module()
class FeatureQueue(InstanceFeatureBank):
    """A first-in-first-out queue of the last ``capacity`` keys, all of
    which serve as negatives of a contrastive loss (MoCo, He et al., CVPR
    2020; AdaDFKD, Li et al., Neural Networks 2024, keeps the normalised
    student features of past synthetic batches).

    As in MoCo, the queue starts full of random unit vectors (drawn from
    N(0, I) with ``seed`` and normalised), so a loss has ``capacity``
    negatives from its first call; :meth:`enqueue` then overwrites the
    oldest keys. It is an :class:`InstanceFeatureBank` (the same ring
    buffer), so it takes batches of any size, wrapping around the end (the
    reference code asserts ``capacity % batch == 0``, which its own CIFAR-10
    script, 4096 keys and batch 768, violates), lives on the training
    device, travels with the model's ``state_dict`` (``--resume`` restores
    the keys and the write position) and is kept per rank under DDP (the
    checkpoint holds rank 0's).

    Args:
        feature_dim (int): Length of a key.
        capacity (int): Number of keys K. Defaults to 4096.
        seed (int): Seed of the initial random keys. Defaults to 0.
    """

    def __init__(self,
                 feature_dim: int,
                 capacity: int = 4096,
                 seed: int = 0) -> None:
        super().__init__(
            feature_dim=feature_dim, capacity=capacity, seed=seed)
        generator = torch.Generator().manual_seed(seed)
        keys = torch.randn(capacity, feature_dim, generator=generator)
        self.features.copy_(F.normalize(keys, dim=1))
        self.num_stored.fill_(capacity)

    def keys(self) -> torch.Tensor:
        """A snapshot of all K keys (K, feature_dim), float32, on the
        queue's device, in storage order (not age order). A copy: a loss
        whose graph holds it stays valid when keys are enqueued before its
        backward pass."""
        return self.features.detach().float().clone()

    def enqueue(self, keys: torch.Tensor) -> None:
        """Replace the oldest ``len(keys)`` keys by ``keys`` (N,
        feature_dim), detached; with N > capacity the last ``capacity``."""
        self.add(keys)
