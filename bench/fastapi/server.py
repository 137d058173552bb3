"""The hand-written FastAPI + onnxruntime server of the bench's memory section.

What a Python team would write to serve one ONNX model over the Open Inference Protocol's
REST infer call: one uvicorn process, one InferenceSession with one intra-op thread, JSON in
and out. Usage: python server.py MODEL.onnx; prints {"port": N} once listening on 127.0.0.1.
"""
import json
import socket
import sys

import numpy as np
import onnxruntime as ort
import uvicorn
from fastapi import FastAPI, Request
from fastapi.responses import Response

opts = ort.SessionOptions()
opts.intra_op_num_threads = 1
opts.inter_op_num_threads = 1
session = ort.InferenceSession(sys.argv[1], opts, providers=["CPUExecutionProvider"])
input_name = session.get_inputs()[0].name
output_name = session.get_outputs()[0].name
app = FastAPI()


@app.get("/v2/health/ready")
def ready():
    return {"ready": True}


@app.post("/v2/models/{name}/infer")
async def infer(name: str, request: Request):
    body = json.loads(await request.body())
    inp = body["inputs"][0]
    data = np.asarray(inp["data"], dtype=np.float32).reshape(inp["shape"])
    out = session.run([output_name], {input_name: data})[0]
    return Response(json.dumps({"model_name": name, "model_version": "1", "outputs": [
        {"name": output_name, "datatype": "FP32", "shape": list(out.shape), "data": out.ravel().tolist()}]}),
        media_type="application/json")


sock = socket.socket()
sock.bind(("127.0.0.1", 0))
print(json.dumps({"port": sock.getsockname()[1]}), flush=True)
uvicorn.run(app, fd=sock.fileno(), log_level="warning", access_log=False)
