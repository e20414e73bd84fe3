from .latent_noise_dataset import LatentNoiseDataset

__all__ = ['LatentNoiseDataset']
