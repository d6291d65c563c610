"""The reference model: its spec, data, the network in each framework and the training loops.

Importing this package is cheap and has no side effects: the heavy frameworks are imported only
by the modules that need them (`model_torch`, `model_keras`, the trainers).
"""
