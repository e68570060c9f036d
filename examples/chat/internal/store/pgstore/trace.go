package pgstore

import (
	"context"
	"strings"

	"github.com/jackc/pgx/v5"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/trace"
)

// queryTracer makes a client span for each query run on behalf of a traced
// request (its ctx holds a span): the Postgres leg of the request's trace.
// Untraced work (a follower's polls) makes none.
type queryTracer struct {
	tracer trace.Tracer
}

func (q queryTracer) TraceQueryStart(ctx context.Context, conn *pgx.Conn, data pgx.TraceQueryStartData) context.Context {
	if !trace.SpanContextFromContext(ctx).IsValid() {
		return ctx
	}
	cfg := conn.Config()
	ctx, _ = q.tracer.Start(ctx, "postgres "+operation(data.SQL), trace.WithSpanKind(trace.SpanKindClient),
		trace.WithAttributes(
			attribute.String("db.system.name", "postgresql"),
			attribute.String("db.namespace", cfg.Database),
			attribute.String("db.query.text", strings.Join(strings.Fields(data.SQL), " ")),
			attribute.String("db.user", cfg.User),
			attribute.String("server.address", cfg.Host),
			attribute.Int("server.port", int(cfg.Port)),
		))
	return ctx
}

func (q queryTracer) TraceQueryEnd(ctx context.Context, _ *pgx.Conn, data pgx.TraceQueryEndData) {
	span := trace.SpanFromContext(ctx)
	if !span.IsRecording() {
		return
	}
	if data.Err != nil {
		span.SetStatus(codes.Error, data.Err.Error())
	}
	span.End()
}

// operation is the first keyword of a statement (WITH, SELECT, ...).
func operation(sql string) string {
	f := strings.Fields(sql)
	if len(f) == 0 {
		return "query"
	}
	return strings.ToUpper(f[0])
}
