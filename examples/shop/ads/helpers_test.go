package main

import (
	"bufio"
	"encoding/json"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

var (
	shopDir = mustAbs("..")
	repoDir = mustAbs("../../..")
)

func mustAbs(p string) string {
	a, err := filepath.Abs(p)
	if err != nil {
		panic(err)
	}
	return a
}

type testSidecar struct {
	URL  string
	cmd  *exec.Cmd
	done chan struct{}
	log  *strings.Builder
}

// startSidecar runs a real `onnx-sidecar serve` (the repository's dist/, so npm run
// build first) on free ports and waits until it is ready.
func startSidecar(t *testing.T, repository string, extra ...string) *testSidecar {
	t.Helper()
	main := filepath.Join(repoDir, "dist", "cli", "main.js")
	if _, err := os.Stat(main); err != nil {
		t.Fatalf("%s is missing: run npm run build in %s first", main, repoDir)
	}
	args := append([]string{main, "serve", "--model-repository", repository, "--model", "ads",
		"--port", "0", "--grpc-port", "off", "--metrics-port", "0", "--metrics-host", "127.0.0.1",
		"--workers", "1", "--threads", "1", "--poll-interval", "500"}, extra...)
	cmd := exec.Command("node", args...)
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stderr = cmd.Stdout
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	s := &testSidecar{cmd: cmd, done: make(chan struct{}), log: &strings.Builder{}}
	urls := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(stdout)
		sc.Buffer(make([]byte, 1<<20), 1<<20)
		for sc.Scan() {
			s.log.WriteString(sc.Text() + "\n")
			var rec struct {
				Msg       string `json:"msg"`
				Inference string `json:"inference"`
			}
			if json.Unmarshal(sc.Bytes(), &rec) == nil && rec.Msg == "onnx-sidecar serving" {
				urls <- rec.Inference
			}
		}
		_ = cmd.Wait()
		close(s.done)
	}()
	t.Cleanup(s.stop)
	select {
	case s.URL = <-urls:
	case <-s.done:
		t.Fatalf("sidecar exited before serving:\n%s", s.log.String())
	case <-time.After(60 * time.Second):
		t.Fatalf("sidecar not serving after 60 s:\n%s", s.log.String())
	}
	deadline := time.Now().Add(60 * time.Second)
	for {
		res, err := http.Get(s.URL + "/v2/health/ready")
		if err == nil {
			res.Body.Close()
			if res.StatusCode == 200 {
				return s
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("sidecar not ready after 60 s:\n%s", s.log.String())
		}
		time.Sleep(100 * time.Millisecond)
	}
}

func (s *testSidecar) stop() {
	select {
	case <-s.done:
		return
	default:
	}
	_ = s.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-s.done:
	case <-time.After(60 * time.Second):
		_ = s.cmd.Process.Kill()
		<-s.done
	}
}

func readJSON(t *testing.T, rel string, v any) {
	t.Helper()
	data, err := os.ReadFile(filepath.Join(shopDir, rel))
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(data, v); err != nil {
		t.Fatalf("%s: %v", rel, err)
	}
}

type heldout struct {
	Accuracy              float64     `json:"accuracy"`
	Target                []int64     `json:"target"`
	ExpectedLabel         []int64     `json:"expected_label"`
	RawFeatures           [][]float64 `json:"raw_features"`
	ExpectedProbabilities [][]float64 `json:"expected_probabilities"`
}

type storefrontExpectations struct {
	Demos []struct {
		Request struct {
			User    string `json:"user"`
			Product string `json:"product"`
			Hour    int    `json:"hour"`
		} `json:"request"`
		Ad   expectedAd `json:"ad"`
		AdV2 expectedAd `json:"ad_v2"`
	} `json:"demos"`
}

type expectedAd struct {
	ID     string  `json:"id"`
	PClick float64 `json:"p_click"`
	ECPM   float64 `json:"ecpm"`
}

// copyTree copies a directory (the model repository) so a test can add a version to it.
func copyTree(t *testing.T, src, dst string) {
	t.Helper()
	err := filepath.Walk(src, func(p string, info os.FileInfo, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(src, p)
		target := filepath.Join(dst, rel)
		if info.IsDir() {
			return os.MkdirAll(target, 0o755)
		}
		data, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		return os.WriteFile(target, data, 0o644)
	})
	if err != nil {
		t.Fatal(err)
	}
}
