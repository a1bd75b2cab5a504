"""Image preprocessing shared by training-time evaluation, export and prediction; no paddle, no model zoo.

``spec`` holds a model's preprocessing metadata and the one list of eval ops generated from it (what
``inference.yml`` records); ``ops`` turns such a list into the transform every eval path runs; ``image_io`` decodes
images the same way everywhere.
"""
