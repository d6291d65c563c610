"""TorchServe target: model archive, handler, config and REST + gRPC clients."""
