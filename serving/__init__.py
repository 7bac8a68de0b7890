"""TF Serving-compatible REST server, client and offline predictor for exported depth SavedModels.

Imports no project model code: anything with the export's signatures is served (see
``serving.server``, ``serving.client``, ``serving.predict``).
"""
