"""One module per architecture family; each registers its builders with :func:`cnnzoo.registry.register_model`.

:func:`cnnzoo.registry.list_models` imports every module here on first use.
"""
