/**
 * The socket files `serve --socket-dir DIR` creates in DIR: the sidecar listens on them,
 * the injector points app containers at them (`ONNX_SIDECAR_SOCKET`, `ONNX_SIDECAR_GRPC_SOCKET`).
 */
export const HTTP_SOCKET_NAME = 'http.sock'
export const GRPC_SOCKET_NAME = 'grpc.sock'
