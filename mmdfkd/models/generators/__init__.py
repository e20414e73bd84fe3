from .coupled_generator import (CoupledGenerator, select_coupling_nodes,
                                trace_bn_inputs)
from .dafl_generator import DAFLGenerator
from .label_embeddings import orthogonal_label_embeddings
from .learnable_images import LearnableImages
from .noisy_layer import NoisyLinear
from .noisy_layer_generator import NoisyLayerGenerator, load_label_embeddings

__all__ = [
    'CoupledGenerator', 'DAFLGenerator', 'LearnableImages', 'NoisyLinear',
    'NoisyLayerGenerator', 'load_label_embeddings',
    'orthogonal_label_embeddings', 'select_coupling_nodes', 'trace_bn_inputs'
]
