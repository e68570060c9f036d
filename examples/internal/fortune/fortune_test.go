package fortune_test

import (
	"context"
	"io"
	"net"
	"strings"
	"testing"

	"github.com/ztnlabs/ztn/examples/internal/fortune"
)

func TestTellFallsBackToBuiltIn(t *testing.T) {
	got := string(fortune.Tell(context.Background()))
	if !strings.HasSuffix(got, "\n") || len(got) < 2 {
		t.Fatalf("fortune %q", got)
	}
}

// TestServeAndRead: every connection gets one fortune and is closed; Read
// returns it whole.
func TestServeAndRead(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- fortune.Serve(t.Context(), l) }()
	for range 3 {
		c, err := net.Dial("tcp", l.Addr().String())
		if err != nil {
			t.Fatal(err)
		}
		text, err := fortune.Read(c)
		c.Close()
		if err != nil || !strings.HasSuffix(text, "\n") || len(text) < 2 {
			t.Fatalf("Read = %q, %v", text, err)
		}
	}
	l.Close()
	if err := <-done; err == nil || err == io.EOF {
		t.Fatalf("Serve after Close = %v, want the listener's error", err)
	}
}
