import datetime
import warnings

from mmengine import DefaultScope


def register_all_modules(init_default_scope: bool = True) -> None:
    """Import every mmdfkd (and mmpretrain) module so that the registries are
    filled, and optionally make ``mmdfkd`` the default scope.

    Args:
        init_default_scope (bool): Whether to set the global default scope to
            ``mmdfkd``. Defaults to True.
    """
    import mmpretrain.utils
    mmpretrain.utils.register_all_modules(init_default_scope=False)

    import mmdfkd.datasets  # noqa: F401
    import mmdfkd.engine  # noqa: F401
    import mmdfkd.evaluation  # noqa: F401
    import mmdfkd.models  # noqa: F401
    from mmdfkd.utils.checkpoint import register_checkpoint_safe_globals
    register_checkpoint_safe_globals()

    if not init_default_scope:
        return
    current_scope = DefaultScope.get_current_instance()
    if current_scope is None:
        DefaultScope.get_instance('mmdfkd', scope_name='mmdfkd')
    elif current_scope.scope_name != 'mmdfkd':
        warnings.warn('The current default scope '
                      f'"{current_scope.scope_name}" is not "mmdfkd", '
                      '`register_all_modules` will force the current '
                      'default scope to be "mmdfkd". If this is not '
                      'expected, please set `init_default_scope=False`.')
        # avoid name conflict
        new_instance_name = f'mmdfkd-{datetime.datetime.now()}'
        DefaultScope.get_instance(new_instance_name, scope_name='mmdfkd')
