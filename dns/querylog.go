package dns

import (
	"bufio"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"math/rand/v2"
	"net/netip"
	"os"
	"path/filepath"
	"sync"
	"time"

	mdns "github.com/miekg/dns"

	"github.com/homeedge/edge/internal/config"
)

// QueryLogConfig turns on a log of queries as JSON lines.
type QueryLogConfig struct {
	// Path is the file written (appended to; reopened on every reload,
	// so logrotate can move it). Empty turns the log off.
	Path string `yaml:"path"`
	// Sample is the fraction of queries logged, from 0 to 1.
	Sample float64 `yaml:"sample"`
}

func (q *QueryLogConfig) validate(c *config.Checker) {
	if q.Path != "" && !filepath.IsAbs(q.Path) {
		c.Key("path").Errorf("must be an absolute path")
	}
	if q.Sample < 0 || q.Sample > 1 {
		c.Key("sample").Errorf("must be between 0 and 1")
	}
}

// queryLog writes sampled queries as JSON lines.
type queryLog struct {
	sample float64
	path   string
	// created says openQueryLog made the file, so that discard removes
	// it again.
	created bool
	// mu guards w and f.
	mu   sync.Mutex
	f    *os.File
	w    *bufio.Writer
	done chan struct{}
}

// queryEntry is one line of the query log.
type queryEntry struct {
	Time   time.Time `json:"time"`
	Client string    `json:"client"`
	Proto  string    `json:"proto"`
	Name   string    `json:"name"`
	Type   string    `json:"type"`
	Rcode  string    `json:"rcode"`
	View   string    `json:"view,omitempty"`
	// Source is how the answer was made: authoritative, cache (the
	// packed-answer cache), resolver, or refused.
	Source string `json:"source"`
	// Micros is the time spent answering, for answers computed.
	Micros int64 `json:"duration_us,omitempty"`
}

// openQueryLog opens cfg's file for appending, creating it if need be;
// nil when the log is off. Nothing is written until start: a reload
// opens the new log in its prepare and starts it in its commit, or
// discards it.
func openQueryLog(cfg QueryLogConfig) (*queryLog, error) {
	if cfg.Path == "" || cfg.Sample == 0 {
		return nil, nil
	}
	created := false
	f, err := os.OpenFile(cfg.Path, os.O_WRONLY|os.O_APPEND, 0)
	if errors.Is(err, fs.ErrNotExist) {
		f, err = os.OpenFile(cfg.Path, os.O_WRONLY|os.O_APPEND|os.O_CREATE|os.O_EXCL, 0o640)
		created = err == nil
		if errors.Is(err, fs.ErrExist) {
			f, err = os.OpenFile(cfg.Path, os.O_WRONLY|os.O_APPEND, 0)
		}
	}
	if err != nil {
		return nil, fmt.Errorf("dns.query_log: %w", err)
	}
	return &queryLog{sample: cfg.Sample, path: cfg.Path, created: created, f: f, w: bufio.NewWriterSize(f, 64<<10), done: make(chan struct{})}, nil
}

// start begins flushing the log; it is called once, when the log
// replaces the previous one.
func (l *queryLog) start() {
	if l != nil {
		go l.flusher()
	}
}

// discard closes a log that was never started, and removes its file if
// openQueryLog created it and nothing was written to it since.
func (l *queryLog) discard() {
	if l == nil {
		return
	}
	l.f.Close()
	if fi, err := os.Stat(l.path); l.created && err == nil && fi.Size() == 0 {
		os.Remove(l.path)
	}
}

// sampled reports whether this query is to be logged.
func (l *queryLog) sampled() bool {
	return l != nil && (l.sample >= 1 || rand.Float64() < l.sample)
}

func (l *queryLog) write(e queryEntry) {
	b, err := json.Marshal(e)
	if err != nil {
		return
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.w != nil {
		l.w.Write(append(b, '\n'))
	}
}

// flusher writes the buffer out every second, so the log is never far
// behind and a crash loses at most a second of it.
func (l *queryLog) flusher() {
	t := time.NewTicker(time.Second)
	defer t.Stop()
	for {
		select {
		case <-l.done:
			return
		case <-t.C:
			l.mu.Lock()
			if l.w != nil {
				l.w.Flush()
			}
			l.mu.Unlock()
		}
	}
}

func (l *queryLog) close() {
	if l == nil {
		return
	}
	close(l.done)
	l.mu.Lock()
	defer l.mu.Unlock()
	l.w.Flush()
	l.f.Close()
	l.w = nil
}

// logQuery logs an answer computed by the handler.
func (s *Server) logQuery(src netip.Addr, proto string, q mdns.Question, rcode int, view, source string, start time.Time) {
	ql := s.qlog.Load()
	if !ql.sampled() {
		return
	}
	ql.write(queryEntry{Time: start.UTC(), Client: src.String(), Proto: proto, Name: q.Name, Type: mdns.TypeToString[q.Qtype],
		Rcode: rcodeLabel(rcode), View: view, Source: source, Micros: time.Since(start).Microseconds()})
}
