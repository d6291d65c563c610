"""The core every stage shares: the spec reader, the input contract check, the Predictor
interface and the one registry of targets. numpy and the standard library only at import, so the
edge runtime and the TorchServe archive can ship it."""
