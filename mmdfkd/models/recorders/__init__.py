from .base_recorder import BaseRecorder
from .bn_statistics import BNStatistics, BNStatisticsRecorder
from .module_recorders import ModuleInputs, ModuleOutputs
from .recorder_manager import RecorderManager

__all__ = [
    'BaseRecorder', 'BNStatistics', 'BNStatisticsRecorder', 'ModuleInputs',
    'ModuleOutputs', 'RecorderManager'
]
