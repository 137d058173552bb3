//go:build tools

// Package tools records the node-side commands the end-to-end test builds, so that go.mod
// and go.sum pin them: containerd v2 (daemon, runc shim, ctr) and the OCI distribution
// registry that serves model images on 127.0.0.1.
package tools

import (
	_ "github.com/containerd/containerd/v2/cmd/containerd"
	_ "github.com/containerd/containerd/v2/cmd/containerd-shim-runc-v2"
	_ "github.com/containerd/containerd/v2/cmd/ctr"
	_ "github.com/distribution/distribution/v3/cmd/registry"
)
