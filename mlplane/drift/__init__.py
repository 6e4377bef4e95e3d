"""The drift job: per-feature drift scores of a model's recent inputs, as Prometheus metrics.

``python -m mlplane.drift`` (see ``__main__.py``) reads a reference sample and a recent window of
a model's inputs (Parquet or CSV, on a local path, s3:// or gs://), scores each monitored feature
with the spec's method and publishes ``mlplane_model_drift_score{namespace, model, feature}``,
the gauge the generated SLO rules read. It needs the ``drift`` extra (scipy, pyarrow,
prometheus-client); the compiler never imports it.
"""
