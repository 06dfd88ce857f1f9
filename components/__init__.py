"""KFP v2 components: one thin, typed wrapper per dlbench step, each running in an image named in
``components.images``. The work happens in ``dlbench`` (``src/``); ``components.runtime`` is the glue
between KFP artifacts and the steps' folders, importable without kfp.
"""
