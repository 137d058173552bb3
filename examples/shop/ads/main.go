// Command ads is the shop's ads service (see ads.go).
//
// Environment: PORT (default 8080), MODEL (default ads), CATALOG (default
// /app/catalog.json, else ../catalog.json), and what the injector sets:
// ONNX_SIDECAR_SOCKET (used when the file exists), else ONNX_SIDECAR_URL.
package main

import (
	"context"
	"encoding/json"
	"fmt"
	"log"
	"net"
	"net/http"
	"os"
	"os/signal"
	"syscall"
	"time"
)

func main() {
	catalogFile := os.Getenv("CATALOG")
	if catalogFile == "" {
		catalogFile = "/app/catalog.json"
		if _, err := os.Stat(catalogFile); err != nil {
			catalogFile = "../catalog.json"
		}
	}
	data, err := os.ReadFile(catalogFile)
	if err != nil {
		log.Fatalf("catalog: %v", err)
	}
	var catalog Catalog
	if err := json.Unmarshal(data, &catalog); err != nil {
		log.Fatalf("catalog %s: %v", catalogFile, err)
	}
	model := os.Getenv("MODEL")
	if model == "" {
		model = "ads"
	}
	port := os.Getenv("PORT")
	if port == "" {
		port = "8080"
	}
	svc := &Service{Catalog: catalog, Sidecar: NewSidecar(os.Getenv), Model: model, Now: time.Now}
	ln, err := net.Listen("tcp", ":"+port)
	if err != nil {
		log.Fatal(err)
	}
	server := &http.Server{Handler: svc.Handler(), ReadHeaderTimeout: 10 * time.Second}
	line, _ := json.Marshal(map[string]any{"msg": "ads listening", "port": ln.Addr().(*net.TCPAddr).Port, "sidecar": svc.Sidecar.via, "model": model})
	fmt.Println(string(line))
	go func() {
		stop := make(chan os.Signal, 1)
		signal.Notify(stop, syscall.SIGTERM, os.Interrupt)
		<-stop
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		defer cancel()
		_ = server.Shutdown(ctx)
	}()
	if err := server.Serve(ln); err != http.ErrServerClosed {
		log.Fatal(err)
	}
}
