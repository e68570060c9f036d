package ztnet

import (
	"context"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/ztnlabs/ztn/internal/test/poll"
)

// Service options given to NewDev are the defaults of every Service of the
// mesh: one logger for the whole mesh, overridden per Service.
func TestDevServiceDefaults(t *testing.T) {
	mesh, own := &logRecorder{}, &logRecorder{}
	m := newTestMesh(t, WithLogger(slog.New(mesh)))
	m.allow(t, "web->api")
	api := m.service(t, "api")
	web := m.service(t, "web", WithLogger(slog.New(own)))
	serve(t, listen(t, api), echo)
	c, err := web.Dial(poll.Context(t, 5*time.Second), "api")
	if err != nil {
		t.Fatal(err)
	}
	roundTrip(t, c, "hi")
	c.Close()
	own.waitFor(t, "ztn connection", func(r logRecord) bool { return r.attrs["side"] == "client" })
	mesh.waitFor(t, "ztn connection", func(r logRecord) bool { return r.attrs["side"] == "server" })
	for _, r := range mesh.find("ztn connection") {
		if r.attrs["side"] == "client" {
			t.Errorf("web's record %v went to the mesh's logger, not its own", r.attrs)
		}
	}
	for _, r := range m.logs.find("ztn connection") {
		t.Errorf("record %v went to the logger newTestMesh set, which WithLogger replaced", r.attrs)
	}
}

// WithSource names one service: NewDev refuses it as a mesh default.
func TestNewDevRefusesWithSource(t *testing.T) {
	m := newTestMesh(t)
	src, err := m.CA().Source(context.Background(), "dc1", "web", time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	defer src.Close()
	if d, err := NewDev(WithSource(src)); err == nil || !strings.Contains(err.Error(), "give it to Dev.Service") {
		if d != nil {
			d.Close()
		}
		t.Fatalf("NewDev(WithSource): %v; want an error saying where WithSource goes", err)
	}
}

// A library is quiet by default: accepted connections are logged at Debug
// (the full access log is a logger at Debug), refusals at Warn, and nothing
// else of ztnet's in a working mesh at Info or above (certificate rotation
// is package certs' to judge).
func TestLogLevels(t *testing.T) {
	m := newTestMesh(t)
	m.allow(t, "web->api")
	api, web, intruder := m.service(t, "api"), m.service(t, "web"), m.service(t, "intruder")
	serve(t, listen(t, api), echo)
	c, err := web.Dial(poll.Context(t, 5*time.Second), "api")
	if err != nil {
		t.Fatal(err)
	}
	roundTrip(t, c, "hi")
	c.Close()
	if _, err := intruder.Dial(poll.Context(t, 5*time.Second), "api"); err == nil {
		t.Fatal("intruder was admitted")
	}
	m.logs.waitFor(t, "ztn connection", func(r logRecord) bool { return r.attrs["side"] == "server" })
	m.logs.waitFor(t, "ztn connection refused", func(logRecord) bool { return true })
	want := map[string]slog.Level{
		"ztn listening":          slog.LevelDebug,
		"ztn connection":         slog.LevelDebug,
		"ztn connection refused": slog.LevelWarn,
		"ztn dial refused":       slog.LevelWarn,
	}
	m.logs.mu.Lock()
	defer m.logs.mu.Unlock()
	seen := map[string]bool{}
	for _, r := range m.logs.records {
		if !strings.HasPrefix(r.msg, "ztn ") {
			continue
		}
		seen[r.msg] = true
		if level, ok := want[r.msg]; !ok && r.level >= slog.LevelInfo {
			t.Errorf("%q at %v: %v", r.msg, r.level, r.attrs)
		} else if ok && r.level != level {
			t.Errorf("%q at %v, want %v", r.msg, r.level, level)
		}
	}
	for msg := range want {
		if !seen[msg] {
			t.Errorf("no %q record", msg)
		}
	}
}
