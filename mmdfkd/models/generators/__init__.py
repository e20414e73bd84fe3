from .dafl_generator import DAFLGenerator
from .learnable_images import LearnableImages

__all__ = ['DAFLGenerator', 'LearnableImages']
