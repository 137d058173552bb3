//go:build tools

// Package tools records the Prometheus server the end-to-end test builds: the real
// kubernetes_sd_configs discovery (Debian's package is built without it).
package tools

import (
	_ "github.com/prometheus/prometheus/cmd/prometheus"
)
