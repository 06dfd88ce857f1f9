"""dlbench: benchmark ResNets against SVMs on MNIST / Fashion-MNIST, CPU and GPU.

Each step (data, train, svm, profile, onnx, report) is a plain function that reads files and
writes files plus one JSON record (see :mod:`dlbench.record`). The CLI, the KFP components and
the pipelines are ways of running those functions; this package knows nothing about KFP or S3.
"""

__version__ = "0.1.0"
