from .synthetic_memory_bank import SyntheticMemoryBank

__all__ = ['SyntheticMemoryBank']
