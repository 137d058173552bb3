package main

// The ads service: for an ad slot on a product page, score every candidate ad with the
// `ads` CTR model in the sidecar and pick the highest expected revenue per impression,
// eCPM = P(click) x bid. Features are looked up and concatenated; the sidecar applies
// the model's min-max normalisation (config.yaml) and runs it.
//
//	GET  /ad?user=u-ada&page=p01[&hour=19]   hour of day 0..23, default: now (UTC)
//	     {"model","model_version","sidecar_ms","user","page","hour","ad":{...},"candidates":[...]}
//	POST /score {"rows": [[8 raw features], ...]}   the model's answer for raw rows
//	     {"model","model_version","sidecar_ms","label","probabilities"}
//	GET  /healthz   200 {"ready":true,...} once the sidecar has the model ready, else 503

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"net/http"
	"sort"
	"strconv"
	"time"
)

// Features are the model's input columns, in order (see examples/shop/README.md).
var Features = []string{"user_age", "user_sessions_30d", "category_affinity", "bid_eur",
	"ad_hist_ctr", "position", "hour_of_day", "page_category_match"}

// maxBatch is the model's max_batch_size (config.yaml); larger requests go in chunks.
const maxBatch = 64

type Product struct {
	ID       string  `json:"id"`
	Name     string  `json:"name"`
	Category string  `json:"category"`
	PriceEUR float64 `json:"price_eur"`
}

type User struct {
	ID          string             `json:"id"`
	Age         float64            `json:"age"`
	Sessions30d float64            `json:"sessions_30d"`
	Affinity    map[string]float64 `json:"affinity"`
}

type Ad struct {
	ID         string  `json:"id"`
	Advertiser string  `json:"advertiser"`
	Title      string  `json:"title"`
	Category   string  `json:"category"`
	BidEUR     float64 `json:"bid_eur"`
	HistCTR    float64 `json:"hist_ctr"`
}

type Catalog struct {
	Products []Product `json:"products"`
	Users    []User    `json:"users"`
	Ads      []Ad      `json:"ads"`
}

// FeatureRow is the model's input row for showing ad to user on page's product page in
// slot position (train.py computes the same).
func FeatureRow(user User, ad Ad, page Product, hour int, position int) []float64 {
	match := 0.0
	if page.Category == ad.Category {
		match = 1
	}
	return []float64{user.Age, user.Sessions30d, user.Affinity[ad.Category], ad.BidEUR, ad.HistCTR,
		float64(position), float64(hour), match}
}

type Service struct {
	Catalog Catalog
	Sidecar *Sidecar
	Model   string
	Now     func() time.Time
}

type httpError struct {
	status int
	msg    string
}

func (e *httpError) Error() string { return e.msg }

type scored struct {
	Version       string      `json:"model_version"`
	SidecarMs     float64     `json:"sidecar_ms"`
	Labels        []int64     `json:"label"`
	Probabilities [][]float64 `json:"probabilities"`
}

func (s *Service) score(r *http.Request, rows [][]float64) (*scored, error) {
	started := time.Now()
	out := &scored{}
	for i := 0; i < len(rows); i += maxBatch {
		end := min(i+maxBatch, len(rows))
		a, err := s.Sidecar.Infer(r.Context(), s.Model, rows[i:end])
		if err != nil {
			var se *SidecarError
			if errors.As(err, &se) && se.Status != http.StatusServiceUnavailable {
				return nil, &httpError{http.StatusBadGateway, err.Error()}
			}
			return nil, &httpError{http.StatusServiceUnavailable, "sidecar: " + err.Error()}
		}
		out.Version = a.Version
		out.Labels = append(out.Labels, a.Labels...)
		out.Probabilities = append(out.Probabilities, a.Probabilities...)
	}
	out.SidecarMs = math.Round(float64(time.Since(started).Microseconds())) / 1000
	return out, nil
}

type candidate struct {
	Ad
	PClick float64 `json:"p_click"`
	ECPM   float64 `json:"ecpm"`
}

func (s *Service) pick(r *http.Request) (any, error) {
	q := r.URL.Query()
	var user *User
	for i := range s.Catalog.Users {
		if s.Catalog.Users[i].ID == q.Get("user") {
			user = &s.Catalog.Users[i]
		}
	}
	if user == nil {
		return nil, &httpError{http.StatusNotFound, fmt.Sprintf("unknown user '%s'", q.Get("user"))}
	}
	var page *Product
	for i := range s.Catalog.Products {
		if s.Catalog.Products[i].ID == q.Get("page") {
			page = &s.Catalog.Products[i]
		}
	}
	if page == nil {
		return nil, &httpError{http.StatusNotFound, fmt.Sprintf("unknown product page '%s'", q.Get("page"))}
	}
	hour := s.Now().UTC().Hour()
	if h := q.Get("hour"); h != "" {
		v, err := strconv.Atoi(h)
		if err != nil || v < 0 || v > 23 {
			return nil, &httpError{http.StatusBadRequest, "hour: an integer 0..23"}
		}
		hour = v
	}
	rows := make([][]float64, len(s.Catalog.Ads))
	for i, ad := range s.Catalog.Ads {
		rows[i] = FeatureRow(*user, ad, *page, hour, 1)
	}
	answer, err := s.score(r, rows)
	if err != nil {
		return nil, err
	}
	cands := make([]candidate, len(s.Catalog.Ads))
	for i, ad := range s.Catalog.Ads {
		p := answer.Probabilities[i][1]
		cands[i] = candidate{Ad: ad, PClick: p, ECPM: p * ad.BidEUR}
	}
	sort.SliceStable(cands, func(a, b int) bool { return cands[a].ECPM > cands[b].ECPM }) // ties: catalog order
	return map[string]any{"model": s.Model, "model_version": answer.Version, "sidecar_ms": answer.SidecarMs,
		"user": user.ID, "page": page.ID, "hour": hour, "ad": cands[0], "candidates": cands}, nil
}

func (s *Service) scoreRows(r *http.Request) (any, error) {
	var body struct {
		Rows [][]float64 `json:"rows"`
	}
	dec := json.NewDecoder(io.LimitReader(r.Body, 1<<20))
	if err := dec.Decode(&body); err != nil {
		return nil, &httpError{http.StatusBadRequest, "body: " + err.Error()}
	}
	if len(body.Rows) == 0 || len(body.Rows) > 10000 {
		return nil, &httpError{http.StatusBadRequest, "rows: 1 to 10000 rows"}
	}
	for _, row := range body.Rows {
		if len(row) != len(Features) {
			return nil, &httpError{http.StatusBadRequest, fmt.Sprintf("rows: arrays of %d numbers %v", len(Features), Features)}
		}
	}
	answer, err := s.score(r, body.Rows)
	if err != nil {
		return nil, err
	}
	return map[string]any{"model": s.Model, "model_version": answer.Version, "sidecar_ms": answer.SidecarMs,
		"label": answer.Labels, "probabilities": answer.Probabilities}, nil
}

func send(w http.ResponseWriter, status int, body any) {
	data, _ := json.Marshal(body)
	w.Header().Set("content-type", "application/json")
	w.Header().Set("content-length", strconv.Itoa(len(data)))
	w.WriteHeader(status)
	_, _ = w.Write(data)
}

// Handler routes the service's endpoints.
func (s *Service) Handler() http.Handler {
	mux := http.NewServeMux()
	wrap := func(f func(*http.Request) (any, error)) http.HandlerFunc {
		return func(w http.ResponseWriter, r *http.Request) {
			body, err := f(r)
			var he *httpError
			switch {
			case errors.As(err, &he):
				send(w, he.status, map[string]string{"error": he.msg})
			case err != nil:
				send(w, http.StatusInternalServerError, map[string]string{"error": err.Error()})
			default:
				send(w, http.StatusOK, body)
			}
		}
	}
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, r *http.Request) {
		ready := s.Sidecar.Ready(r.Context(), s.Model)
		status := http.StatusOK
		if !ready {
			status = http.StatusServiceUnavailable
		}
		send(w, status, map[string]any{"ready": ready, "model": s.Model, "sidecar": s.Sidecar.via})
	})
	mux.HandleFunc("GET /ad", wrap(s.pick))
	mux.HandleFunc("POST /score", wrap(s.scoreRows))
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		send(w, http.StatusNotFound, map[string]string{"error": "not found: GET /ad?user=ID&page=ID[&hour=H], POST /score, GET /healthz"})
	})
	return mux
}
