package main

// The ads service against a real sidecar serving examples/shop/models:
//   cd examples/shop/ads && go test ./...      (npm run build in the repository first)

import (
	"bytes"
	"encoding/json"
	"fmt"
	"math"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"testing"
	"time"
)

func newService(t *testing.T, env map[string]string) *httptest.Server {
	t.Helper()
	var catalog Catalog
	readJSON(t, "catalog.json", &catalog)
	svc := &Service{Catalog: catalog, Sidecar: NewSidecar(func(k string) string { return env[k] }), Model: "ads",
		Now: func() time.Time { return time.Date(2026, 1, 1, 19, 0, 0, 0, time.UTC) }}
	srv := httptest.NewServer(svc.Handler())
	t.Cleanup(srv.Close)
	return srv
}

func get(t *testing.T, url string, v any) int {
	t.Helper()
	res, err := http.Get(url)
	return decode(t, res, err, v)
}

func post(t *testing.T, url string, body []byte, v any) int {
	t.Helper()
	res, err := http.Post(url, "application/json", bytes.NewReader(body))
	return decode(t, res, err, v)
}

// decode reads a JSON answer into v (nil: discard it) and returns its status.
func decode(t *testing.T, res *http.Response, err error, v any) int {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	if v != nil {
		if err := json.NewDecoder(res.Body).Decode(v); err != nil {
			t.Fatal(err)
		}
	}
	return res.StatusCode
}

type scoreAnswer struct {
	Model         string      `json:"model"`
	Version       string      `json:"model_version"`
	SidecarMs     *float64    `json:"sidecar_ms"`
	Label         []int64     `json:"label"`
	Probabilities [][]float64 `json:"probabilities"`
}

type adAnswer struct {
	Version    string      `json:"model_version"`
	SidecarMs  *float64    `json:"sidecar_ms"`
	Hour       int         `json:"hour"`
	Ad         candidate   `json:"ad"`
	Candidates []candidate `json:"candidates"`
}

func checkHeldout(t *testing.T, base, fixture, version string) {
	t.Helper()
	var h heldout
	readJSON(t, fixture, &h)
	body, _ := json.Marshal(map[string]any{"rows": h.RawFeatures})
	var got scoreAnswer
	if status := post(t, base+"/score", body, &got); status != 200 {
		t.Fatalf("/score: %d", status)
	}
	if got.Version != version || got.Model != "ads" || got.SidecarMs == nil {
		t.Fatalf("/score: model %q version %q sidecar_ms %v", got.Model, got.Version, got.SidecarMs)
	}
	if len(got.Label) != len(h.ExpectedLabel) {
		t.Fatalf("%d labels for %d rows", len(got.Label), len(h.ExpectedLabel))
	}
	correct, worst := 0, 0.0
	for i := range h.ExpectedLabel {
		if got.Label[i] != h.ExpectedLabel[i] {
			t.Fatalf("row %d: label %d, expected %d", i, got.Label[i], h.ExpectedLabel[i])
		}
		if got.Label[i] == h.Target[i] {
			correct++
		}
		for k := range h.ExpectedProbabilities[i] {
			worst = math.Max(worst, math.Abs(got.Probabilities[i][k]-h.ExpectedProbabilities[i][k]))
		}
	}
	if worst >= 1e-5 {
		t.Errorf("largest probability difference %g", worst)
	}
	if acc := math.Round(float64(correct)/float64(len(h.Target))*1e6) / 1e6; acc != h.Accuracy {
		t.Errorf("accuracy %v, expected %v", acc, h.Accuracy)
	}
}

func checkDemos(t *testing.T, base, version string, v2 bool) {
	t.Helper()
	var sf storefrontExpectations
	readJSON(t, "expectations/storefront.json", &sf)
	for _, d := range sf.Demos {
		want := d.Ad
		if v2 {
			want = d.AdV2
		}
		var got adAnswer
		url := fmt.Sprintf("%s/ad?user=%s&page=%s&hour=%d", base, d.Request.User, d.Request.Product, d.Request.Hour)
		if status := get(t, url, &got); status != 200 {
			t.Fatalf("%s: %d", url, status)
		}
		if got.Version != version || got.Ad.ID != want.ID || math.Abs(got.Ad.PClick-want.PClick) > 1e-4 || math.Abs(got.Ad.ECPM-want.ECPM) > 1e-4 {
			t.Errorf("%s: version %s ad %s p %v ecpm %v; expected version %s ad %s p %v ecpm %v",
				url, got.Version, got.Ad.ID, got.Ad.PClick, got.Ad.ECPM, version, want.ID, want.PClick, want.ECPM)
		}
		if len(got.Candidates) != 8 || got.Candidates[0].ID != got.Ad.ID {
			t.Errorf("%s: %d candidates, first %s", url, len(got.Candidates), got.Candidates[0].ID)
		}
	}
}

func TestAgainstSidecar(t *testing.T) {
	sc := startSidecar(t, filepath.Join(shopDir, "models"))
	base := newService(t, map[string]string{"ONNX_SIDECAR_URL": sc.URL}).URL

	t.Run("healthz", func(t *testing.T) {
		var body map[string]any
		if status := get(t, base+"/healthz", &body); status != 200 || body["ready"] != true || body["sidecar"] != sc.URL {
			t.Fatalf("/healthz: %d %v", status, body)
		}
	})
	t.Run("score matches the held-out expectations", func(t *testing.T) {
		checkHeldout(t, base, "expectations/ads.json", "1")
	})
	t.Run("ad matches the storefront expectations", func(t *testing.T) {
		checkDemos(t, base, "1", false)
	})
	t.Run("hour defaults to now", func(t *testing.T) {
		var got adAnswer
		if status := get(t, base+"/ad?user=u-ada&page=p01", &got); status != 200 || got.Hour != 19 {
			t.Fatalf("%d, hour %d", status, got.Hour)
		}
	})
	t.Run("bad requests", func(t *testing.T) {
		for url, want := range map[string]int{
			"/ad?user=nobody&page=p01":        404,
			"/ad?user=u-ada&page=nope":        404,
			"/ad?user=u-ada&page=p01&hour=24": 400,
			"/nope":                           404,
		} {
			if status := get(t, base+url, nil); status != want {
				t.Errorf("%s: %d, expected %d", url, status, want)
			}
		}
		for body, want := range map[string]int{`{"rows":[[1,2]]}`: 400, `nope`: 400, `{"rows":[]}`: 400} {
			if status := post(t, base+"/score", []byte(body), nil); status != want {
				t.Errorf("POST /score %s: %d, expected %d", body, status, want)
			}
		}
	})
	t.Run("without its sidecar: healthz 503, ad 503", func(t *testing.T) {
		sc.stop()
		if status := get(t, base+"/healthz", nil); status != 503 {
			t.Errorf("/healthz: %d", status)
		}
		if status := get(t, base+"/ad?user=u-ada&page=p01", nil); status != 503 {
			t.Errorf("/ad: %d", status)
		}
	})
}

func TestFeatureRow(t *testing.T) {
	var c Catalog
	readJSON(t, "catalog.json", &c)
	got := FeatureRow(c.Users[0], c.Ads[0], c.Products[0], 19, 1) // u-ada, a1 (running), p01 (running)
	want := []float64{34, 18, 0.55, 0.8, 0.045, 1, 19, 1}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("%v, expected %v", got, want)
	}
}

// Shipping v2: a new version directory on the sidecar's repository is loaded and swapped
// in; the service answers with v2 without a restart.
func TestShipV2(t *testing.T) {
	repo := t.TempDir()
	copyTree(t, filepath.Join(shopDir, "models", "ads"), filepath.Join(repo, "ads"))
	sc := startSidecar(t, repo)
	base := newService(t, map[string]string{"ONNX_SIDECAR_URL": sc.URL}).URL
	checkDemos(t, base, "1", false)

	tmp := filepath.Join(repo, "ads", ".2.partial")
	copyTree(t, filepath.Join(shopDir, "models-v2", "ads", "2"), tmp)
	if err := os.Rename(tmp, filepath.Join(repo, "ads", "2")); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(60 * time.Second)
	for {
		var got adAnswer
		if status := get(t, base+"/ad?user=u-ada&page=p01&hour=19", &got); status == 200 && got.Version == "2" {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("v2 not serving after 60 s:\n%s", sc.log.String())
		}
		time.Sleep(200 * time.Millisecond)
	}
	checkDemos(t, base, "2", true)
	checkHeldout(t, base, "expectations/ads-v2.json", "2")
}

// onnx-sidecar.io/socket: "true": ONNX_SIDECAR_SOCKET wins over ONNX_SIDECAR_URL.
func TestUnixSocket(t *testing.T) {
	dir, err := os.MkdirTemp("", "ads-sock") // short: a socket path has at most 107 bytes
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	startSidecar(t, filepath.Join(shopDir, "models"), "--socket-dir", dir)
	sock := filepath.Join(dir, "http.sock")
	srv := newService(t, map[string]string{"ONNX_SIDECAR_SOCKET": sock, "ONNX_SIDECAR_URL": "http://127.0.0.1:1"})
	var body map[string]any
	if status := get(t, srv.URL+"/healthz", &body); status != 200 || body["sidecar"] != "unix:"+sock {
		t.Fatalf("/healthz: %d %v", status, body)
	}
	checkDemos(t, srv.URL, "1", false)
}
