# onnx-sidecar: one image for the sidecar (`serve`, the default) and the injector (`webhook`).
#
#   podman build -t onnx-sidecar:0.1.0 .     (or docker build)
#   scripts/build-image.sh                    on this project's machines: no registry is reachable,
#                                             so it first makes BASE_IMAGE locally
#
# Stages: deps (npm ci, all dependencies) → build (tsc) and prod-deps (production
# dependencies only, pruned) → runtime (node + dist + prod node_modules + example models).
# The runtime writes nothing outside /tmp, so it runs with a read-only root filesystem,
# as the numeric non-root user 65532.
ARG BASE_IMAGE=docker.io/library/node:20-bookworm-slim

FROM ${BASE_IMAGE} AS deps
WORKDIR /src
# onnxruntime-node's install script would download CUDA binaries: package.json's
# allowScripts denies it on npm 11 and later, ONNXRUNTIME_NODE_INSTALL=skip on any npm
# (the base image's may be older). The CPU binaries ship inside the package.
ENV npm_config_fund=false npm_config_audit=false npm_config_update_notifier=false ONNXRUNTIME_NODE_INSTALL=skip
COPY package.json package-lock.json ./
RUN npm ci --no-audit --no-fund

FROM deps AS build
COPY tsconfig.json tsconfig.build.json ./
COPY cli ./cli
COPY common ./common
COPY sidecar ./sidecar
COPY injector ./injector
COPY client ./client
COPY cluster ./cluster
RUN npm run build \
 && rm -rf dist/cluster \
 && find dist \( -name '*.map' -o -name '*.d.ts' \) -type f -delete

FROM deps AS prod-deps
# Production dependencies only, then what no Node.js process on linux-x64 ever loads:
# onnxruntime-node's binaries for other platforms (about 245 MB of its 290 MB), source
# maps, type declarations and documents, and the bundler-only `esnext` builds of
# OpenTelemetry (Node.js resolves `main`/`exports`, never the `esnext` field). And the
# cluster commands' client (@kubernetes/client-node and the 68 packages only it needs, about
# 24 MB): `doctor` and `rollout` run from the npm package on an operator's machine or in CI,
# not in the sidecar's image, which every node pulls (the build drops dist/cluster too).
RUN npm prune --omit=dev --no-audit --no-fund \
 && npm uninstall --no-save --omit=dev --ignore-scripts --no-audit --no-fund @kubernetes/client-node \
 && ort=node_modules/onnxruntime-node/bin/napi-v6 \
 && test -f "$ort/linux/x64/onnxruntime_binding.node" \
 && find "$ort" -mindepth 2 -maxdepth 2 -type d ! -path "$ort/linux/x64" -exec rm -rf {} + \
 && find "$ort" -mindepth 1 -maxdepth 1 -type d ! -path "$ort/linux" -exec rm -rf {} + \
 && rm -rf node_modules/@opentelemetry/*/build/esnext node_modules/.package-lock.json \
 && find node_modules -type f \( -name '*.map' -o -name '*.ts' -o -name '*.mts' -o -name '*.cts' \
      -o -iname '*.md' -o -iname '*.markdown' \) -delete

FROM ${BASE_IMAGE} AS runtime
ARG VERSION=0.1.0
ARG REVISION=unknown
LABEL org.opencontainers.image.title="onnx-sidecar" \
      org.opencontainers.image.description="Serve ONNX models next to your service: a Kubernetes sidecar speaking the Open Inference Protocol v2, and the admission webhook that injects it." \
      org.opencontainers.image.version="${VERSION}" \
      org.opencontainers.image.revision="${REVISION}" \
      org.opencontainers.image.licenses="Apache-2.0" \
      org.opencontainers.image.source="https://github.com/onnx-sidecar/onnx-sidecar" \
      org.opencontainers.image.base.name="docker.io/library/node:20-bookworm-slim"
# jemalloc as the allocator (Debian's libjemalloc2, about 0.8 MB): memory a burst took is given
# back when the burst is over. Freed pages are returned by jemalloc's background thread a second
# after they were last used (dirty_decay_ms:1000, muzzy_decay_ms:0), where glibc keeps them until
# the top of a heap is free: 30 s after a 64-connection burst on 1 CPU, the CNN held 1.14x its
# idle anonymous memory, glibc 1.6x (issue 24, docs/performance.md). narenas:2 as glibc's
# arenas were capped below; tcache_max:1024 keeps the per-thread caches small (-4 MiB idle, CPU
# per request within noise). Skipped when the base image already has it.
RUN if ! ls /usr/lib/*-linux-gnu/libjemalloc.so.2 >/dev/null 2>&1; then \
      apt-get update && apt-get install -y --no-install-recommends libjemalloc2 \
      && rm -rf /var/lib/apt/lists/* /var/cache/apt/*.bin /var/log/apt /var/log/dpkg.log; \
    fi
# MALLOC_ARENA_MAX=2: when the preload is turned off (LD_PRELOAD=), glibc otherwise gives every
# thread that allocates (inference and metrics workers, ONNX Runtime, libuv) an arena of its own;
# two arenas measured -2 to -3 MiB idle RSS and -6 to -8 MiB after load on 1 CPU (issue 13).
ENV NODE_ENV=production \
    HOME=/tmp \
    TMPDIR=/tmp \
    LD_PRELOAD=libjemalloc.so.2 \
    MALLOC_CONF=background_thread:true,dirty_decay_ms:1000,muzzy_decay_ms:0,narenas:2,tcache_max:1024 \
    MALLOC_ARENA_MAX=2 \
    ONNX_SIDECAR_MODEL_REPOSITORY=/models
WORKDIR /app
# Owned by root and read-only for the runtime user: the app cannot change itself.
COPY package.json ./
COPY --from=prod-deps /src/node_modules ./node_modules
COPY --from=build /src/dist ./dist
# The example models (iris, digits) as the default repository, so `podman run IMAGE`
# answers out of the box; Kubernetes mounts the model volume over /models.
COPY models /models
USER 65532:65532
# 8500 inference (loopback only by default), 9464 metrics and health, 8443 webhook (HTTPS).
EXPOSE 8500 8501 9464 8443
STOPSIGNAL SIGTERM
ENTRYPOINT ["node", "/app/dist/cli/main.js"]
CMD ["serve"]
