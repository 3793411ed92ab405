package api

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/abacus-ab/abacus/internal/validate"
)

// The event paths' benchmarks: a request through the handler, with the
// default input validation on and authentication off, publishing to an
// in-process NATS. Compare releases with benchstat:
//
//	go test -run '^$' -bench 'Batch2000|AssignHandler|RecordHandler' -benchmem -count 6 ./api/

// BenchmarkBatch2000 posts a batch of 2,000 events, an assignment and a
// result for each of 1,000 users, and reports the cost per event.
func BenchmarkBatch2000(b *testing.B) {
	h, testID := newEventBenchServer(b)
	var sb strings.Builder
	sb.WriteByte('[')
	for i := range 1000 {
		if i > 0 {
			sb.WriteByte(',')
		}
		fmt.Fprintf(&sb, `{"type":"assignment","test_id":%q,"user_id":"user-%d@example.com","attributes":{"country":"DE","plan":"pro"}},`, testID, i)
		fmt.Fprintf(&sb, `{"type":"result","test_id":%q,"user_id":"user-%d@example.com","event_id":"order-%d","metrics":{"revenue":%d.5,"conversion":1}}`, testID, i, i, i%97)
	}
	sb.WriteByte(']')
	body := sb.String()
	b.SetBytes(int64(len(body)))
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		req := httptest.NewRequest(http.MethodPost, batchPath, strings.NewReader(body))
		req.Header.Set("Content-Type", "application/json")
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		if rec.Code != http.StatusAccepted {
			b.Fatalf("batch = %d %.300s", rec.Code, rec.Body)
		}
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/2000, "ns/event")
}

// BenchmarkAssignHandler assigns a new user per request.
func BenchmarkAssignHandler(b *testing.B) {
	h, testID := newEventBenchServer(b)
	path := "/api/ab-testing/tests/" + testID + "/assign"
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; b.Loop(); i++ {
		benchPost(b, h, path, fmt.Sprintf(`{"user_id":"user-%d@example.com","attributes":{"country":"DE"}}`, i), http.StatusOK)
	}
}

// BenchmarkRecordHandler records one result per request.
func BenchmarkRecordHandler(b *testing.B) {
	h, testID := newEventBenchServer(b)
	path := "/api/ab-testing/tests/" + testID + "/record"
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; b.Loop(); i++ {
		benchPost(b, h, path, fmt.Sprintf(`{"user_id":"user-%d@example.com","metrics":{"revenue":%d.5}}`, i, i%97), http.StatusAccepted)
	}
}

func benchPost(b *testing.B, h http.Handler, path, body string, want int) {
	req := httptest.NewRequest(http.MethodPost, path, strings.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	if rec.Code != want {
		b.Fatalf("POST %s = %d %.300s, want %d", path, rec.Code, rec.Body, want)
	}
}

// newEventBenchServer is a server with the default input validation and
// no authentication, and the id of a running test.
func newEventBenchServer(b *testing.B) (http.Handler, string) {
	b.Helper()
	c := newCore(b)
	v, err := validate.New(validate.DefaultConfig())
	if err != nil {
		b.Fatal(err)
	}
	s, err := New(Config{AuthDisabled: true}, Deps{Registry: c.reg, Publisher: c.bus.JS, Requester: c.bus.NC, Validator: v, Logger: c.log})
	if err != nil {
		b.Fatal(err)
	}
	return s.Handler(), c.testID
}

// BenchmarkAssignParallel assigns new users from 32 concurrent clients, as
// a server's traffic arrives: the group committer (commit.go) coalesces
// their exposures into batch messages.
func BenchmarkAssignParallel(b *testing.B) {
	h, testID := newEventBenchServer(b)
	path := "/api/ab-testing/tests/" + testID + "/assign"
	var n atomic.Int64
	b.ReportAllocs()
	b.SetParallelism(16) // 32 goroutines on 2 cores
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			benchPost(b, h, path, fmt.Sprintf(`{"user_id":"user-%d@example.com"}`, n.Add(1)), http.StatusOK)
		}
	})
}

// BenchmarkRecordParallel records results from 32 concurrent clients.
func BenchmarkRecordParallel(b *testing.B) {
	h, testID := newEventBenchServer(b)
	path := "/api/ab-testing/tests/" + testID + "/record"
	var n atomic.Int64
	b.ReportAllocs()
	b.SetParallelism(16)
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			benchPost(b, h, path, fmt.Sprintf(`{"user_id":"user-%d@example.com","metrics":{"revenue":1.5}}`, n.Add(1)), http.StatusAccepted)
		}
	})
}
