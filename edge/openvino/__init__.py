"""OpenVINO: the PyTorch model's ONNX file converted to OpenVINO's IR and run on its CPU plugin."""
