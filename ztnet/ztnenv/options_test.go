package ztnenv

import (
	"context"
	"testing"
	"time"

	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"

	"github.com/ztnlabs/ztn/internal/test/meshtest"
	"github.com/ztnlabs/ztn/internal/test/poll"
	"github.com/ztnlabs/ztn/ztnet"
)

// TestWithServiceOptions: the options reach every Service the Env makes:
// here the tracer provider, which sees both ends of a connection.
func TestWithServiceOptions(t *testing.T) {
	rec := tracetest.NewSpanRecorder()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(rec))
	defer tp.Shutdown(context.Background())
	vars := meshVars()
	vars["ZTN_DEV"], vars["ZTN_SERVICE"] = "1", "web"
	e, err := New(getenvFrom(vars), WithLogger(meshtest.Discard()), WithServiceOptions(ztnet.WithTracerProvider(tp)))
	if err != nil {
		t.Fatal(err)
	}
	defer e.Close()
	if err := e.Dev().Policy().Set(); err != nil { // default deny; the verdict is traced too
		t.Fatal(err)
	}
	ctx := poll.Context(t, 10*time.Second)
	api, err := e.Service(ctx, "api")
	if err != nil {
		t.Fatal(err)
	}
	ln, err := api.Listen(ctx, "tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			c.Close()
		}
	}()
	if _, err := e.Dial(ctx, "api"); err == nil {
		t.Fatal("dial allowed under default deny")
	}
	poll.WaitFor(t, 5*time.Second, func() bool {
		var dial, accept bool
		for _, s := range rec.Ended() {
			dial = dial || s.SpanKind().String() == "client"
			accept = accept || s.SpanKind().String() == "server"
		}
		return dial && accept
	})
}
