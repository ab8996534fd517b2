"""Learned fraud model for selectivity: leak-free features, boosted trees exported to ONNX, onnxruntime scoring.

Serving (`riskmodel.scoring`, `riskmodel.features`, `riskmodel.metrics`, `riskmodel.records`) needs numpy and
onnxruntime only; training (`riskmodel.training`) needs the `riskml` extra (LightGBM, onnxmltools). The library imports
nothing of `services` or `api`, so the declarations service can plug it into selectivity later.
"""
