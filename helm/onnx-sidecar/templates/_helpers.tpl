{{/* Chart name, at most 63 characters. */}}
{{- define "onnx-sidecar.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/*
Full name: release-chart, or just the release name when it already contains the chart
name; at most 63 characters (the DNS label limit of Kubernetes names).
*/}}
{{- define "onnx-sidecar.fullname" -}}
{{- if .Values.fullnameOverride }}
{{- .Values.fullnameOverride | trunc 63 | trimSuffix "-" }}
{{- else }}
{{- $name := default .Chart.Name .Values.nameOverride }}
{{- if contains $name .Release.Name }}
{{- .Release.Name | trunc 63 | trimSuffix "-" }}
{{- else }}
{{- printf "%s-%s" .Release.Name $name | trunc 63 | trimSuffix "-" }}
{{- end }}
{{- end }}
{{- end }}

{{/* A name derived from the full name with a suffix, still at most 63 characters. */}}
{{- define "onnx-sidecar.suffixed" -}}
{{- $full := include "onnx-sidecar.fullname" .ctx }}
{{- printf "%s-%s" ($full | trunc (int (sub 62 (len .suffix))) | trimSuffix "-") .suffix }}
{{- end }}

{{- define "onnx-sidecar.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/* Labels on every object. */}}
{{- define "onnx-sidecar.labels" -}}
helm.sh/chart: {{ include "onnx-sidecar.chart" . }}
{{ include "onnx-sidecar.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/part-of: onnx-sidecar
{{- end }}

{{/* Labels that select the injector's pods; never change them (Deployment selectors are immutable). */}}
{{- define "onnx-sidecar.selectorLabels" -}}
app.kubernetes.io/name: {{ include "onnx-sidecar.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/component: injector
{{- end }}

{{- define "onnx-sidecar.serviceAccountName" -}}
{{- if .Values.serviceAccount.create }}
{{- default (include "onnx-sidecar.fullname" .) .Values.serviceAccount.name }}
{{- else }}
{{- default "default" .Values.serviceAccount.name }}
{{- end }}
{{- end }}

{{/* repository[:tag][@digest] from an image block, falling back to image.* and appVersion. */}}
{{- define "onnx-sidecar.imageRef" -}}
{{- $root := .root }}
{{- $repo := default $root.Values.image.repository .image.repository }}
{{- $tag := default (default $root.Chart.AppVersion $root.Values.image.tag) .image.tag }}
{{- $digest := default $root.Values.image.digest .image.digest }}
{{- if $digest }}
{{- printf "%s:%s@%s" $repo $tag $digest }}
{{- else }}
{{- printf "%s:%s" $repo $tag }}
{{- end }}
{{- end }}

{{- define "onnx-sidecar.injectorImage" -}}
{{- include "onnx-sidecar.imageRef" (dict "root" . "image" (dict)) }}
{{- end }}

{{- define "onnx-sidecar.sidecarImage" -}}
{{- include "onnx-sidecar.imageRef" (dict "root" . "image" .Values.sidecar.image) }}
{{- end }}

{{/* Whether the injector runs in the cluster (false when webhook.url points elsewhere). */}}
{{- define "onnx-sidecar.inCluster" -}}
{{- if not .Values.webhook.url }}true{{- end }}
{{- end }}

{{- define "onnx-sidecar.tlsSecretName" -}}
{{- if eq .Values.tls.mode "existingSecret" }}
{{- required "tls.existingSecret is required when tls.mode is existingSecret" .Values.tls.existingSecret }}
{{- else }}
{{- include "onnx-sidecar.suffixed" (dict "ctx" . "suffix" "tls") }}
{{- end }}
{{- end }}

{{- define "onnx-sidecar.serviceName" -}}
{{- include "onnx-sidecar.fullname" . }}
{{- end }}

{{/* DNS names of the serving certificate: the Service's names plus extras. */}}
{{- define "onnx-sidecar.dnsNames" -}}
{{- $svc := include "onnx-sidecar.serviceName" . }}
{{- $names := list $svc (printf "%s.%s" $svc .Release.Namespace) (printf "%s.%s.svc" $svc .Release.Namespace) (printf "%s.%s.svc.cluster.local" $svc .Release.Namespace) }}
{{- $ips := list }}
{{- with .Values.webhook.url }}
{{- $host := (urlParse .).host | replace "[" "" }}
{{- $host = regexReplaceAll ":[0-9]+$" $host "" | replace "]" "" }}
{{- if regexMatch "^[0-9.]+$|:" $host }}
{{- $ips = append $ips $host }}
{{- else }}
{{- $names = append $names $host }}
{{- end }}
{{- end }}
{{- toJson (dict "dns" (concat $names .Values.tls.extraDnsNames | uniq) "ips" (concat $ips .Values.tls.extraIpAddresses | uniq)) }}
{{- end }}

{{/*
The self-signed CA and serving certificate as JSON {ca, cert, key}. An existing Secret
(found with `lookup` on install and upgrade) is reused as it is, so the CA never changes
under a running API server; `helm template` cannot look anything up and generates fresh
ones. Include it once per template file: every call without a Secret mints a new CA.
*/}}
{{- define "onnx-sidecar.selfSignedTls" -}}
{{- $secret := lookup "v1" "Secret" .Release.Namespace (include "onnx-sidecar.tlsSecretName" .) }}
{{- $data := dict }}
{{- if and $secret $secret.data }}
{{- $data = $secret.data }}
{{- end }}
{{- if and (index $data "ca.crt") (index $data "tls.crt") (index $data "tls.key") }}
{{- toJson (dict "ca" (index $data "ca.crt" | b64dec) "cert" (index $data "tls.crt" | b64dec) "key" (index $data "tls.key" | b64dec)) }}
{{- else }}
{{- $days := int .Values.tls.selfSigned.validityDays }}
{{- $ca := genCA (printf "%s-ca" (include "onnx-sidecar.fullname" .)) $days }}
{{- $sans := include "onnx-sidecar.dnsNames" . | fromJson }}
{{- $cn := printf "%s.%s.svc" (include "onnx-sidecar.serviceName" .) .Release.Namespace }}
{{- $cert := genSignedCert $cn $sans.ips $sans.dns $days $ca }}
{{- toJson (dict "ca" $ca.Cert "cert" $cert.Cert "key" $cert.Key) }}
{{- end }}
{{- end }}

{{/* The injection config (injector/injection-config.ts) as a dict, built from .Values.sidecar. */}}
{{- define "onnx-sidecar.injectionConfig" -}}
{{- $s := .Values.sidecar }}
{{- $p := $s.ports }}
{{- if or (eq (int $p.inference) (int $p.grpc)) (eq (int $p.inference) (int $p.metrics)) (eq (int $p.grpc) (int $p.metrics)) }}
{{- fail (printf "sidecar.ports: inference (%d), grpc (%d) and metrics (%d) must be three different ports (the injector refuses the config otherwise)" (int $p.inference) (int $p.grpc) (int $p.metrics)) }}
{{- end }}
{{- $volume := dict "name" $s.modelVolume.name }}
{{- if $s.modelVolume.source }}
{{- $volume = merge $volume (deepCopy $s.modelVolume.source) }}
{{- /* The model volume is shared by every injected pod: read-only wherever the source can say so. */}}
{{- range $kind, $src := $s.modelVolume.source }}
{{- if and (kindIs "map" $src) (has $kind (list "awsElasticBlockStore" "azureDisk" "azureFile" "cephfs" "cinder" "csi" "fc" "flexVolume" "gcePersistentDisk" "glusterfs" "iscsi" "nfs" "persistentVolumeClaim" "portworxVolume" "quobyte" "rbd" "scaleIO" "storageos")) }}
{{- if and (hasKey $src "readOnly") (not $src.readOnly) }}
{{- fail (printf "sidecar.modelVolume.source.%s.readOnly is false: the model volume is shared by every injected pod and mounted read-only (leave readOnly out or set it to true)" $kind) }}
{{- end }}
{{- $_ := set (index $volume $kind) "readOnly" true }}
{{- end }}
{{- end }}
{{- else }}
{{- $_ := set $volume "persistentVolumeClaim" (dict "claimName" $s.modelVolume.claimName "readOnly" true) }}
{{- end }}
{{- $env := list }}
{{- with $s.otel.endpoint }}{{ $env = append $env (dict "name" "OTEL_EXPORTER_OTLP_ENDPOINT" "value" .) }}{{ end }}
{{- with $s.otel.protocol }}{{ $env = append $env (dict "name" "OTEL_EXPORTER_OTLP_PROTOCOL" "value" .) }}{{ end }}
{{- with $s.otel.sampler }}{{ $env = append $env (dict "name" "OTEL_TRACES_SAMPLER" "value" .) }}{{ end }}
{{- with $s.otel.samplerArg }}{{ $env = append $env (dict "name" "OTEL_TRACES_SAMPLER_ARG" "value" (toString .)) }}{{ end }}
{{- with $s.otel.resourceAttributes }}
{{- $pairs := list }}
{{- range $k, $v := . }}{{ $pairs = append $pairs (printf "%s=%s" $k (toString $v)) }}{{ end }}
{{- $env = append $env (dict "name" "OTEL_RESOURCE_ATTRIBUTES" "value" (join "," $pairs)) }}
{{- end }}
{{- $config := dict
  "image" (include "onnx-sidecar.sidecarImage" .)
  "imagePullPolicy" $s.image.pullPolicy
  "nativeSidecar" $s.nativeSidecar
  "ports" (dict "inference" (int $s.ports.inference) "grpc" (int $s.ports.grpc) "metrics" (int $s.ports.metrics))
  "socket" $s.socket
  "resources" $s.resources
  "modelVolume" $volume
  "modelImage" (dict "pullPolicy" $s.modelImage.pullPolicy)
  "tmpSizeLimit" $s.tmpSizeLimit
  "logLevel" $s.logLevel
  "prometheusAnnotations" $s.prometheusAnnotations
}}
{{- range $probe := list "startupProbe" "readinessProbe" "livenessProbe" }}
{{- with index $s $probe }}{{ $_ := set $config $probe . }}{{ end }}
{{- end }}
{{- with $s.securityContext }}{{ $_ := set $config "securityContext" . }}{{ end }}
{{- with concat $env $s.env }}{{ $_ := set $config "env" . }}{{ end }}
{{- toYaml $config }}
{{- end }}
