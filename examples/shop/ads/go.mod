module example.com/onnx-sidecar/shop/ads

go 1.22
