from .data_free_distillation import DataFreeDistillation
from .deep_inversion import DeepInversionDistillation
from .meta_generator_update import MetaGeneratorUpdate

__all__ = [
    'DataFreeDistillation', 'DeepInversionDistillation', 'MetaGeneratorUpdate'
]
