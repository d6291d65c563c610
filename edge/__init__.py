"""Edge targets: TFLite (fp32, int8), ExecuTorch (XNNPACK fp32/int8, portable) and ONNX (fp32, int8), with runners.

Exporters (`edge.export`, `edge.<target>.export` / `convert` / `quantize`) run in the main environment; the
runners (`edge.<target>.run`) load only their runtime. The TFLite runner needs numpy, Pillow and a
TFLite interpreter only, so it runs in `.venv-edge`, as on a device. Nothing happens at import.
"""
