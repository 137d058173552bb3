/** The images the e2e builds and imports into containerd, by the names the manifests use. */
/** scripts/build-image.sh of this checkout; the chart is installed with it as sidecar.image. */
export const SIDECAR_IMAGE = 'localhost/onnx-sidecar:e2e'
/** examples/recommender/app/Containerfile, under the name examples/recommender/*.yaml use. */
export const APP_IMAGE = 'registry.example.com/shop/recommender:1.0.0'
