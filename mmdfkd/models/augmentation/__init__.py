from .cutmix import CutMix
from .synthesis_augmentation import SynthesisAugmentation

__all__ = ['CutMix', 'SynthesisAugmentation']
