from .dafl_generator import DAFLGenerator
from .learnable_images import LearnableImages

__all__ = ['DAFLGenerator', 'LearnableImages']
from .noisy_layer import NoisyLinear  # noqa: E402
from .noisy_layer_generator import (NoisyLayerGenerator,  # noqa: E402
                                    load_label_embeddings)

__all__ += ['NoisyLinear', 'NoisyLayerGenerator', 'load_label_embeddings']
