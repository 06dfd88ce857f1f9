"""The study pipeline (KFP v2), an edge dlbench's core does not know: kfp.

``pipelines.study`` builds and compiles the pipeline from a study spec, ``pipelines.local`` runs it
with kfp.local (``local_publish`` stores the run, ``local_console`` is what the terminal shows of it),
``pipelines.submit`` sends it to a KFP API (the S3 backend of ``dlbench.store`` is
``stores.s3``). Nothing here is imported by ``dlbench`` except lazily, inside the CLI handlers.
"""

from dlbench.errors import DlbenchError


class PipelineError(DlbenchError):
    """The pipeline could not be built, run, submitted or found."""
