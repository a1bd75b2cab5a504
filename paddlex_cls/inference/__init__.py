"""Prediction from an exported folder (``inference.yml`` + model files): no model zoo, no trainer.

``model_dir`` reads and checks an export, ``inputs`` turns user inputs into decoded images, ``predictor`` runs a
backend over preprocessed batches and yields results.
"""
