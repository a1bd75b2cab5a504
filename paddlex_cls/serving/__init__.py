"""The HTTP service: PaddleX's serving protocol for image classification over the inference package.

``paddlex-cls --serve --pipeline image_classification --model_dir DIR`` (see ``server.serve``). FastAPI and uvicorn
come with the ``serving`` extra; nothing here imports the model zoo or the trainer.

Layout: ``settings`` (limits and defaults), ``protocol`` (request model, envelopes), ``image_source`` (base64 or
URL -> bytes), ``image_work`` (decode, preprocess, visualise), ``batcher`` (the inference thread), ``service`` (one
request end to end), ``admission`` and ``access_log`` (ASGI layers), ``app`` (FastAPI routes and error envelopes),
``server`` (start, listen, stop).
"""
