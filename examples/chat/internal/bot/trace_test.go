package bot

import (
	"context"
	"log/slog"
	"testing"
	"time"

	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace"

	"github.com/ztnlabs/ztn/examples/chat/internal/store"
)

// TestAnswerContinuesTrace: the bot answers a message in the trace the
// message was posted in, and asks the fortune service within that span.
func TestAnswerContinuesTrace(t *testing.T) {
	rec := tracetest.NewSpanRecorder()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(rec))
	defer tp.Shutdown(context.Background())
	st := store.NewMemory()
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	me, err := EnsureUser(ctx, st, DefaultEmail)
	if err != nil {
		t.Fatal(err)
	}
	ann, err := st.CreateUser(ctx, store.NewUser{Email: "ann@example.com", PasswordHash: "x"})
	if err != nil {
		t.Fatal(err)
	}
	asked := make(chan trace.SpanContext, 1)
	b := New(FortunerFunc(func(ctx context.Context) (string, error) {
		asked <- trace.SpanContextFromContext(ctx)
		return "Trust, but verify.", nil
	}), nil, WithLogger(slog.New(slog.DiscardHandler)), WithTracerProvider(tp))
	started := make(chan struct{})
	b.cfg.started = func() { close(started) }
	runCtx, stop := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- b.Run(runCtx, st, me.ID) }()
	<-started
	answers := follow(t, st, me.ID)

	const traceID, parentID = "0af7651916cd43dd8448eb211c80319c", "b7ad6b7169203331"
	if _, err := st.CreateMessage(ctx, store.NewMessage{Text: "/fortune", UserID: ann.ID, CreatedAt: 1,
		TraceParent: "00-" + traceID + "-" + parentID + "-01"}); err != nil {
		t.Fatal(err)
	}
	next(t, answers)
	sc := <-asked
	stop()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	spans := rec.Ended()
	if len(spans) != 1 || spans[0].Name() != "chat-bot answer" {
		t.Fatalf("spans %v, want one chat-bot answer", spans)
	}
	s := spans[0]
	if s.SpanContext().TraceID().String() != traceID || s.Parent().SpanID().String() != parentID || !s.Parent().IsRemote() {
		t.Errorf("the answer's span is in trace %s under %s, want %s under %s", s.SpanContext().TraceID(), s.Parent().SpanID(), traceID, parentID)
	}
	if sc.SpanID() != s.SpanContext().SpanID() {
		t.Errorf("the fortune was asked in span %s, not in the answer's %s", sc.SpanID(), s.SpanContext().SpanID())
	}
}
