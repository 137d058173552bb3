#!/usr/bin/env bash
# Ships a new model version the way examples/ci/model-release.yml does, from this machine:
#   1. export    train and export the candidate (skl2onnx: examples/ci/export-shop-ads.py)
#   2. assemble  one model repository holding the live version and the candidate
#   3. check     onnx-sidecar check: golden cases, then the candidate --against live
#   4. image     build the model image (scripts/build-model-image.sh); with --push, push it
#                and pin it by digest
#   5. rollout   onnx-sidecar rollout start DEPLOYMENT --candidate MODEL:V --model-image REF@sha256:…,
#                rollout status --wait, then rollout promote (exit 0) or rollout abort (1, 3)
# Steps 1-4 need no cluster; `--until image` (or --dry-run) stops after the image.
#
# usage: examples/ci/release-model.sh [options] [-- CHECK-FLAGS...]
#   --model NAME           the model to release (ads)
#   --live DIR             the live model repository (examples/shop/models)
#   --live-version N       the version that serves now (the highest one in DIR/NAME)
#   --candidate-dir DIR    skip the export: DIR is an exported version (model.onnx [, golden/])
#   --candidate-version N  the candidate's version number (live + 1)
#   --work DIR             where the repository, the report and the image ref go (a new temp dir)
#   --image REF            name:tag of the model image (localhost/onnx-sidecar-models/NAME:vN)
#   --push                 push the image to REF's registry and pin it by digest
#   --model-image REF@sha256:…  skip steps 1-4: roll out this image, built and checked before
#   --deployment NAME      the Deployment that runs the rollout (needed for step 5)
#   -n, --namespace NS     its namespace (default: the kubeconfig's)
#   --canary PCT           answer PCT % of requests with the candidate (default: shadow)
#   --timeout DURATION     how long rollout status --wait waits (10m)
#   --until STEP           stop after export, check, image or rollout (the default: all)
#   --dry-run              the same as --until image
# Flags after -- go to onnx-sidecar check (e.g. -- --max-probability-shift 0.05).
# Environment: ONNX_SIDECAR (the CLI; default this checkout's dist/cli/main.js, else
# onnx-sidecar on PATH), EXPORT_PYTHON (a Python with examples/shop/training/requirements.txt;
# default a cached virtualenv made on first use).
# Exit: 0 shipped (or stopped where --until said), 1 check regressed or the rollout rolled
# back, 2 check found the export invalid or incompatible, or a step failed, 3 the rollout was
# inconclusive (aborted), 64 usage.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/../.." && pwd)

usage () { sed -n '/^# usage:/,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//' >&2; exit "${1:-64}"; }
die () { echo "release-model: $*" >&2; exit 2; }
step () { echo "== release-model: $*" >&2; }

model=ads live="$repo/examples/shop/models" live_version='' candidate_dir='' candidate_version=''
work='' image='' model_image='' push=false deployment='' namespace=() canary=() timeout=10m until=rollout
check_flags=()
while [ $# -gt 0 ]; do
  case "$1" in
    --model|--live|--live-version|--candidate-dir|--candidate-version|--work|--image|--model-image|--deployment|-n|--namespace|--canary|--timeout|--until)
      [ $# -ge 2 ] || { echo "release-model: $1 needs a value" >&2; usage; }
      case "$1" in
        --model) model=$2 ;; --live) live=$2 ;; --live-version) live_version=$2 ;;
        --candidate-dir) candidate_dir=$2 ;; --candidate-version) candidate_version=$2 ;;
        --work) work=$2 ;; --image) image=$2 ;; --model-image) model_image=$2 ;; --deployment) deployment=$2 ;;
        -n|--namespace) namespace=(-n "$2") ;; --canary) canary=(--canary "$2") ;;
        --timeout) timeout=$2 ;; --until) until=$2 ;;
      esac
      shift 2 ;;
    --push) push=true; shift ;;
    --dry-run) until=image; shift ;;
    -h|--help) usage 0 ;;
    --) shift; check_flags=("$@"); break ;;
    *) echo "release-model: unknown argument '$1'" >&2; usage ;;
  esac
done
case "$until" in export|check|image|rollout) ;; *) echo "release-model: --until: '$until' is not export, check, image or rollout" >&2; usage ;; esac
[[ $model =~ ^[A-Za-z0-9][A-Za-z0-9_.-]*$ ]] || { echo "release-model: --model: '$model' is not a model name" >&2; usage; }
for v in "$live_version" "$candidate_version"; do
  [ -z "$v" ] || [[ $v =~ ^[1-9][0-9]*$ ]] || { echo "release-model: a version is a positive integer, not '$v'" >&2; usage; }
done
[ -d "$live/$model" ] || die "--live: $live/$model is not a directory (no model '$model' in the live repository)"
if [ "$until" = rollout ]; then
  [ -n "$deployment" ] || { echo "release-model: the rollout step needs --deployment (or stop earlier with --until image)" >&2; usage; }
  $push || [ -n "$model_image" ] || { echo "release-model: the rollout step needs --push (the cluster pulls the image by digest)" >&2; usage; }
fi
if [ -n "$model_image" ]; then
  [ "$until" = rollout ] || { echo "release-model: --model-image skips to the rollout; --until $until stops before it" >&2; usage; }
  [[ $model_image == *@sha256:* ]] || { echo "release-model: --model-image: '$model_image' is not pinned by digest (name@sha256:…)" >&2; usage; }
fi

if [ -z "${ONNX_SIDECAR:-}" ]; then
  # In a checkout of this project (npm ci done, nothing built yet, as on a fresh CI runner)
  # build the CLI first; elsewhere use the installed package's onnx-sidecar.
  if [ ! -f "$repo/dist/cli/main.js" ] && [ -f "$repo/tsconfig.build.json" ] && [ -d "$repo/node_modules" ]; then
    echo "== release-model: building the CLI (npm run build in $repo)"
    (cd "$repo" && npm run --silent build) || die "npm run build failed in $repo"
  fi
  if [ -f "$repo/dist/cli/main.js" ]; then ONNX_SIDECAR="node $repo/dist/cli/main.js"; else ONNX_SIDECAR=onnx-sidecar; fi
  command -v "${ONNX_SIDECAR%% *}" >/dev/null 2>&1 || die "onnx-sidecar is not on PATH: npm install -g onnx-sidecar-<version>.tgz (docs/install.md), or set ONNX_SIDECAR"
fi
# shellcheck disable=SC2206 # a command line, split on purpose ("node .../main.js")
cli=($ONNX_SIDECAR)

if [ -z "$live_version" ]; then
  live_version=$(find "$live/$model" -mindepth 2 -maxdepth 2 -name model.onnx -path "$live/$model/[1-9]*" \
    | sed -E "s#.*/([0-9]+)/model\.onnx#\1#" | sort -n | tail -n 1)
  [ -n "$live_version" ] || die "--live: $live/$model holds no <version>/model.onnx"
fi
[ -f "$live/$model/$live_version/model.onnx" ] || die "--live-version: $live/$model/$live_version/model.onnx does not exist"
candidate_version=${candidate_version:-$((live_version + 1))}
[ "$candidate_version" != "$live_version" ] || die "--candidate-version: $candidate_version is the live version"
image=${image:-localhost/onnx-sidecar-models/$model:v$candidate_version}
if [ -z "$work" ]; then work=$(mktemp -d); else mkdir -p "$work"; fi
work=$(cd "$work" && pwd)
echo "release-model: working in $work" >&2

# 1. export -----------------------------------------------------------------------------
if [ -n "$model_image" ]; then
  step "steps 1-4 skipped: rolling out $model_image"
elif [ -z "$candidate_dir" ]; then
  [ "$model" = ads ] || die "the bundled export step trains the shop's ads model; for '$model' give --candidate-dir"
  python=${EXPORT_PYTHON:-}
  if [ -z "$python" ]; then
    reqs="$repo/examples/shop/training/requirements.txt"
    venv="${XDG_CACHE_HOME:-$HOME/.cache}/onnx-sidecar/venv-shop-training-$(sha256sum "$reqs" | cut -c1-16)"
    if [ ! -f "$venv/.complete" ]; then
      step "creating $venv (pip install -r examples/shop/training/requirements.txt; once)"
      partial="$venv.partial-$$"
      rm -rf "$partial"; mkdir -p "$(dirname "$venv")"
      if python3 -m venv "$partial" && PIP_DISABLE_PIP_VERSION_CHECK=1 "$partial/bin/python" -m pip install -q --no-input -r "$reqs" \
         && "$partial/bin/python" -c 'import skl2onnx, sklearn, onnxruntime'; then
        touch "$partial/.complete"; rm -rf "$venv"; mv "$partial" "$venv"
      else
        rm -rf "$partial"; die "could not install $reqs"
      fi
    fi
    python="$venv/bin/python"
  fi
  step "export: $model v$candidate_version (skl2onnx, examples/ci/export-shop-ads.py)"
  candidate_dir="$work/export/$model/$candidate_version"
  rm -rf "$candidate_dir"
  "$python" "$here/export-shop-ads.py" "$candidate_dir" || die "the export failed"
fi
if [ -z "$model_image" ]; then
  [ -f "$candidate_dir/model.onnx" ] || die "--candidate-dir: $candidate_dir/model.onnx does not exist"
  [ "$until" != export ] || { echo "$candidate_dir"; exit 0; }

  # 2. assemble: the live model as it serves now, plus the candidate version -----------------
  release="$work/repository"
  rm -rf "$release"; mkdir -p "$release"
  cp -R "$live/$model" "$release/$model"
  chmod -R u+w "$release"
  # Golden cases at the model level were written for the version that serves now: they become
  # the live version's own, and the candidate brings its own (its golden/ directory).
  if [ -d "$release/$model/golden" ]; then
    mkdir -p "$release/$model/$live_version/golden"
    cp -R "$release/$model/golden/." "$release/$model/$live_version/golden/"
    rm -rf "$release/$model/golden"
  fi
  rm -rf "${release:?}/$model/$candidate_version"
  cp -R "$candidate_dir" "$release/$model/$candidate_version"
  # Other versions of the live repository are not shipped: the image holds live and candidate.
  for d in "$release/$model"/*/; do
    v=$(basename "$d")
    if [[ $v =~ ^[0-9]+$ ]] && [ "$v" != "$live_version" ] && [ "$v" != "$candidate_version" ]; then rm -rf "$d"; fi
  done
  chmod -R a+rX "$release"
  step "assembled $release: $model versions $live_version (live) and $candidate_version (candidate)"

  # 3. check ------------------------------------------------------------------------------
  step "check: ${cli[*]} check $release --against $model:$live_version ${check_flags[*]}"
  set +e
  "${cli[@]}" check "$release" --against "$model:$live_version" --junit "$work/check.xml" "${check_flags[@]}"
  check_status=$?
  set -e
  case "$check_status" in
    0) ;;
    1) echo "release-model: check: the candidate regressed (report: $work/check.xml); nothing was built" >&2; exit 1 ;;
    2) echo "release-model: check: the export is invalid or incompatible (report: $work/check.xml); nothing was built" >&2; exit 2 ;;
    *) die "check: exit $check_status (usage error: see the flags after --)" ;;
  esac
  [ "$until" != check ] || exit 0

  # 4. image ------------------------------------------------------------------------------
  push_flag=(); if $push; then push_flag=(--push); fi
  step "image: scripts/build-model-image.sh $release $image ${push_flag[*]}"
  ref=$(bash "$repo/scripts/build-model-image.sh" "$release" "$image" "${push_flag[@]}") || die "the image build failed"
  echo "$ref" >"$work/image-ref"
  step "image: $ref"
  if [ "$until" = image ]; then echo "$ref"; exit 0; fi
fi
ref=${model_image:-$ref}

# 5. rollout ----------------------------------------------------------------------------
step "rollout start $deployment --candidate $model:$candidate_version --model-image $ref"
"${cli[@]}" rollout start "$deployment" "${namespace[@]}" --candidate "$model:$candidate_version" "${canary[@]}" --model-image "$ref" \
  || die "rollout start failed (a candidate recorded as rejected is never started again)"
step "rollout status $deployment --wait --timeout $timeout"
set +e
"${cli[@]}" rollout status "$deployment" "${namespace[@]}" --wait --timeout "$timeout"
decision=$?
set -e
case "$decision" in
  0) step "promote"; "${cli[@]}" rollout promote "$deployment" "${namespace[@]}" || die "rollout promote failed"; echo "$ref"; exit 0 ;;
  1) step "abort: the candidate rolled back"; "${cli[@]}" rollout abort "$deployment" "${namespace[@]}" || die "rollout abort failed"; exit 1 ;;
  3) step "abort: inconclusive or timed out"; "${cli[@]}" rollout abort "$deployment" "${namespace[@]}" || die "rollout abort failed"; exit 3 ;;
  *) die "rollout status: exit $decision (API or usage error); the rollout is left as it is: run rollout status, then promote or abort" ;;
esac
