"""TF Serving target: versioned SavedModel export, server configs, gRPC + REST clients, and a
TF-Serving-compatible server for machines without tensorflow_model_server."""
