from .latent_noise_dataset import LatentNoiseDataset

__all__ = ['LatentNoiseDataset']
from .tiny_imagenet import TinyImageNet

__all__ += ['TinyImageNet']
