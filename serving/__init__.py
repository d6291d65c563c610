"""Model servers for the reference model: TorchServe and TF Serving, their clients and benchmark.

Importing this package is cheap and has no side effects.
"""
