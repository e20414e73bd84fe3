from .data_free_distillation import DataFreeDistillation
from .deep_inversion import DeepInversionDistillation
from .meta_generator_update import MetaGeneratorUpdate
from .ta_dfkd import TADFKDDistillation

__all__ = [
    'DataFreeDistillation', 'DeepInversionDistillation', 'MetaGeneratorUpdate',
    'TADFKDDistillation'
]
