"""Where GPU tasks run on a cluster: the one place the pipeline and manifests/gpu take these values from.

The defaults fit the NVIDIA GPU Operator (GPU Feature Discovery labels GPU nodes
``nvidia.com/gpu.present=true``) and the common taint on GPU node pools (GKE puts
``nvidia.com/gpu=present:NoSchedule`` on them; elsewhere add it yourself, see README "Kubernetes").
Change them here for another cluster; manifests/gpu/gpu-smoke-job.yaml uses the same values (a test
checks that they agree).
"""

from __future__ import annotations

ACCELERATOR = "nvidia.com/gpu"  # the extended resource a GPU task requests (task.set_accelerator_type)
ACCELERATOR_LIMIT = 1  # GPUs per task

NODE_SELECTOR_KEY = "nvidia.com/gpu.present"
NODE_SELECTOR_VALUE = "true"
NODE_SELECTOR = {NODE_SELECTOR_KEY: NODE_SELECTOR_VALUE}

# kfp.kubernetes.add_toleration(task, **TOLERATION)
TOLERATION = {"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"}
