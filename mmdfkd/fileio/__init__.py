from .atomic_local_backend import (AtomicLocalBackend, atomic_write,
                                   stale_temporary_files)

__all__ = ['AtomicLocalBackend', 'atomic_write', 'stale_temporary_files']
