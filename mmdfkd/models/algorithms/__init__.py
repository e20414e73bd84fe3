from .adadfkd import AdaDFKDDistillation
from .cmi import CMIDistillation
from .cpnet import CPNetDistillation
from .cudfkd import CuDFKDDistillation
from .data_free_distillation import DataFreeDistillation
from .deep_inversion import DeepInversionDistillation
from .fast import FastDistillation
from .meta_generator_update import MetaGeneratorUpdate
from .ta_dfkd import TADFKDDistillation

__all__ = [
    'AdaDFKDDistillation', 'CMIDistillation', 'CPNetDistillation',
    'CuDFKDDistillation', 'DataFreeDistillation', 'DeepInversionDistillation',
    'FastDistillation', 'MetaGeneratorUpdate', 'TADFKDDistillation'
]
