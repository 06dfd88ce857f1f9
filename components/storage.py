"""The artifact store on a cluster: the names the pipeline and manifests/ share (a test checks they agree).

manifests/base deploys MinIO as the Service ``dlbench-minio`` with the bucket ``dlbench``; the pipeline's
user's keys live in the Secret ``dlbench-s3`` (keys ``accesskey``/``secretkey``, the names KFP's
launcher settings use), the endpoint in the ConfigMap ``dlbench-s3-config``. A pipeline task gets them
with kfp-kubernetes, so its YAML holds only these names, never a key:

    kubernetes.use_secret_as_env(task, S3_SECRET, S3_SECRET_ENV)
    kubernetes.use_config_map_as_env(task, S3_CONFIG, S3_CONFIG_ENV)
"""

from __future__ import annotations

NAMESPACE = "kubeflow"  # where manifests/overlays/* put everything; standalone KFP runs pipelines there
BUCKET = "dlbench"
ENDPOINT = "http://dlbench-minio:9000"  # the Service, reached from pods of the same namespace
PIPELINE_ROOT = f"s3://{BUCKET}/kfp"  # KFP's own artifacts (kfp-launcher defaultPipelineRoot)
STORE_URL = f"s3://{BUCKET}/runs"  # dlbench's step folders and records

S3_SECRET = "dlbench-s3"
S3_SECRET_ENV = {"accesskey": "AWS_ACCESS_KEY_ID", "secretkey": "AWS_SECRET_ACCESS_KEY"}
S3_CONFIG = "dlbench-s3-config"
S3_CONFIG_ENV = {"DLBENCH_S3_ENDPOINT": "DLBENCH_S3_ENDPOINT", "DLBENCH_S3_REGION": "DLBENCH_S3_REGION"}
