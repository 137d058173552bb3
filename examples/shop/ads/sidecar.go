package main

// A client for the sidecar's Open Inference Protocol REST API in plain net/http and
// encoding/json: no client library is needed to call a model.

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"strings"
	"time"
)

// Sidecar talks to the onnx-sidecar next to this service.
type Sidecar struct {
	base   string // http://127.0.0.1:8500, or http://unix for the Unix socket
	via    string // what /healthz reports: the URL or unix:<path>
	client *http.Client
}

// NewSidecar uses ONNX_SIDECAR_SOCKET when that file exists (the injector sets it for
// onnx-sidecar.io/socket: "true"), else ONNX_SIDECAR_URL, else http://127.0.0.1:8500.
func NewSidecar(getenv func(string) string) *Sidecar {
	transport := &http.Transport{MaxIdleConnsPerHost: 16, IdleConnTimeout: 60 * time.Second}
	s := &Sidecar{client: &http.Client{Transport: transport, Timeout: 30 * time.Second}}
	if sock := getenv("ONNX_SIDECAR_SOCKET"); sock != "" {
		if _, err := os.Stat(sock); err == nil {
			transport.DialContext = func(ctx context.Context, _, _ string) (net.Conn, error) {
				return (&net.Dialer{}).DialContext(ctx, "unix", sock)
			}
			s.base, s.via = "http://unix", "unix:"+sock
			return s
		}
	}
	s.base = strings.TrimRight(getenv("ONNX_SIDECAR_URL"), "/")
	if s.base == "" {
		s.base = "http://127.0.0.1:8500"
	}
	s.via = s.base
	return s
}

// SidecarError is an answer from the sidecar that is not 200.
type SidecarError struct {
	Status  int
	Message string
}

func (e *SidecarError) Error() string { return fmt.Sprintf("sidecar %d: %s", e.Status, e.Message) }

type tensor struct {
	Name     string    `json:"name"`
	Datatype string    `json:"datatype"`
	Shape    []int     `json:"shape"`
	Data     []float64 `json:"data"`
}

type inferResponse struct {
	ModelVersion string   `json:"model_version"`
	Outputs      []tensor `json:"outputs"`
}

// Answer is the model's output for a batch of rows.
type Answer struct {
	Version       string
	Labels        []int64
	Probabilities [][]float64 // float32 values, exactly
}

// Infer sends rows of raw FP32 features as input `input` of model.
func (s *Sidecar) Infer(ctx context.Context, model string, rows [][]float64) (*Answer, error) {
	width := len(rows[0])
	flat := make([]float64, 0, len(rows)*width)
	for _, r := range rows {
		flat = append(flat, r...)
	}
	body, err := json.Marshal(map[string]any{
		"inputs": []tensor{{Name: "input", Datatype: "FP32", Shape: []int{len(rows), width}, Data: flat}},
	})
	if err != nil {
		return nil, err
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, s.base+"/v2/models/"+model+"/infer", bytes.NewReader(body))
	if err != nil {
		return nil, err
	}
	req.Header.Set("content-type", "application/json")
	res, err := s.client.Do(req)
	if err != nil {
		return nil, err
	}
	defer res.Body.Close()
	data, err := io.ReadAll(io.LimitReader(res.Body, 64<<20))
	if err != nil {
		return nil, err
	}
	if res.StatusCode != http.StatusOK {
		var e struct {
			Error string `json:"error"`
		}
		_ = json.Unmarshal(data, &e)
		return nil, &SidecarError{Status: res.StatusCode, Message: e.Error}
	}
	var out inferResponse
	if err := json.Unmarshal(data, &out); err != nil {
		return nil, fmt.Errorf("sidecar answer: %w", err)
	}
	a := &Answer{Version: out.ModelVersion}
	for _, o := range out.Outputs {
		switch o.Name {
		case "label":
			for _, v := range o.Data {
				a.Labels = append(a.Labels, int64(v))
			}
		case "probabilities":
			if len(o.Shape) != 2 || o.Shape[0] != len(rows) || len(o.Data) != o.Shape[0]*o.Shape[1] {
				return nil, fmt.Errorf("sidecar answer: probabilities of shape %v for %d rows", o.Shape, len(rows))
			}
			for i := 0; i < o.Shape[0]; i++ {
				a.Probabilities = append(a.Probabilities, o.Data[i*o.Shape[1]:(i+1)*o.Shape[1]])
			}
		}
	}
	if len(a.Labels) != len(rows) || len(a.Probabilities) != len(rows) {
		return nil, fmt.Errorf("sidecar answer: %d labels and %d probability rows for %d rows", len(a.Labels), len(a.Probabilities), len(rows))
	}
	return a, nil
}

// Ready asks GET /v2/models/{model}/ready.
func (s *Sidecar) Ready(ctx context.Context, model string) bool {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, s.base+"/v2/models/"+model+"/ready", nil)
	if err != nil {
		return false
	}
	res, err := s.client.Do(req)
	if err != nil {
		return false
	}
	_, _ = io.Copy(io.Discard, res.Body)
	res.Body.Close()
	return res.StatusCode == http.StatusOK
}
