"""Artifact-store backends outside ``src/``: each imports its own SDK, which ``dlbench`` never imports.

``stores.s3`` is the S3 backend of ``dlbench.store`` (minio SDK). A backend registers itself by URL scheme
when imported (``dlbench.store.register_store_backend``); ``dlbench.store.open_store`` imports the module
of a known scheme (``dlbench.store.BACKEND_MODULES``) the first time such a URL is opened.
"""
