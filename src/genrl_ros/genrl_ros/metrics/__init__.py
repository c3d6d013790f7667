"""Evaluation measures of generative models, computed before any RL.

- :mod:`genrl_ros.metrics.precision_recall`: improved precision and recall (Kynkaanniemi et
  al. 2019) on raw flattened trajectories, exact k-nearest neighbours, chunked (bounded
  memory): ``precision_recall``, ``knn_manifold``, ``precision_recall_from_manifolds``;
- :mod:`genrl_ros.metrics.dwpr`: disentanglement with precision and recall (GenRL paper
  section 5.2.2): ``dwpr``, ``intervention_values``.

Import from the modules (``from genrl_ros.metrics.precision_recall import
precision_recall``); the package itself re-exports nothing, so that the module names stay
modules and importing it does not import torch.
"""
