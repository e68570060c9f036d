package ztnet

import (
	"context"
	"time"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/metric"

	"github.com/ztnlabs/ztn/authz"
)

const instrumentationName = "github.com/ztnlabs/ztn/ztnet"

// metrics holds the Service's instruments. Attribute sets are built once so
// that recording on the handshake path does not allocate.
type metrics struct {
	handshakes metric.Int64Counter
	duration   metric.Float64Histogram
	decisions  metric.Int64Counter
	active     metric.Int64UpDownCounter
	revoked    metric.Int64Counter
	dials      metric.Int64Counter
	resumption metric.Int64Counter
	acceptFail metric.Int64Counter

	sets map[string]metric.MeasurementOption
	// decisionOpts holds, per reason kind, the options of a deny ([0]) and
	// an allow ([1]) decision, as ready-made slices: recording a decision,
	// once per request under L7 intentions, then allocates nothing.
	decisionOpts map[string]*[2][]metric.AddOption
	svc          attribute.KeyValue
}

// Handshake results, as recorded in the result attribute of
// ztn.handshakes.
const (
	resultOK       = "ok"
	resultDenied   = "denied"
	resultRejected = "rejected" // identity not acceptable (chain, SAN, trust domain)
	resultError    = "error"    // TLS or network failure, timeout
	// resultStale is a resumed session refused because the client's
	// certificate has expired or lost its root since it began (routine
	// during rotation: the client redoes a full handshake).
	resultStale = "stale_session"
)

// Outcomes of session resumption on Dial, as recorded in the outcome
// attribute of ztn.dial.resumption.
const (
	resumptionResumed  = "resumed"
	resumptionFull     = "full"
	resumptionFallback = "fallback"
)

func newMetrics(mp metric.MeterProvider, service string) (*metrics, error) {
	m := mp.Meter(instrumentationName)
	var err error
	var mt metrics
	if mt.handshakes, err = m.Int64Counter("ztn.handshakes",
		metric.WithDescription("TLS handshakes by side and result (ok, denied, rejected, stale_session, protocol, error)")); err != nil {
		return nil, err
	}
	if mt.duration, err = m.Float64Histogram("ztn.handshake.duration", metric.WithUnit("s"),
		metric.WithDescription("Duration of handshake plus authorization"),
		metric.WithExplicitBucketBoundaries(0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.5, 1, 5)); err != nil {
		return nil, err
	}
	if mt.decisions, err = m.Int64Counter("ztn.authz.decisions",
		metric.WithDescription("Connection authorization decisions by result and reason kind")); err != nil {
		return nil, err
	}
	if mt.active, err = m.Int64UpDownCounter("ztn.connections.active",
		metric.WithDescription("Open ztn connections by side")); err != nil {
		return nil, err
	}
	if mt.revoked, err = m.Int64Counter("ztn.connections.revoked",
		metric.WithDescription("Open connections closed because the policy now denies them")); err != nil {
		return nil, err
	}
	if mt.dials, err = m.Int64Counter("ztn.dial.attempts",
		metric.WithDescription("Dial attempts to instances by result")); err != nil {
		return nil, err
	}
	if mt.resumption, err = m.Int64Counter("ztn.dial.resumption",
		metric.WithDescription("Connections Dial made, by how: resumed (a session resumed), full (no session to offer), fallback (the server did not take the session: redone as a full handshake)")); err != nil {
		return nil, err
	}
	if mt.acceptFail, err = m.Int64Counter("ztn.listener.accept_failures",
		metric.WithDescription("Failed Accept calls of listeners, retried with backoff, by reason: fd_limit (out of file descriptors), other")); err != nil {
		return nil, err
	}
	mt.sets = make(map[string]metric.MeasurementOption)
	svc := attribute.String("service", service)
	mt.svc = svc
	for _, reason := range []string{"fd_limit", "other"} {
		mt.sets["accept:"+reason] = metric.WithAttributeSet(attribute.NewSet(svc, attribute.String("reason", reason)))
	}
	for _, how := range []string{resumptionResumed, resumptionFull, resumptionFallback} {
		mt.sets["resumption:"+how] = metric.WithAttributeSet(attribute.NewSet(svc, attribute.String("outcome", how)))
	}
	for _, side := range []string{"server", "client"} {
		mt.sets["side:"+side] = metric.WithAttributeSet(attribute.NewSet(svc, attribute.String("side", side)))
		for _, r := range []string{resultOK, resultDenied, resultRejected, resultStale, resultError, resultProtocol} {
			mt.sets[side+":"+r] = metric.WithAttributeSet(attribute.NewSet(svc, attribute.String("side", side), attribute.String("result", r)))
		}
	}
	mt.decisionOpts = make(map[string]*[2][]metric.AddOption)
	for _, kind := range []string{authz.KindIntention, authz.KindDefault, authz.KindNotSynced, authz.KindL7AtL4, authz.KindL7NoMatch, authz.KindL7Permission, authz.KindNone} {
		var opts [2][]metric.AddOption
		for i, allowed := range []bool{false, true} {
			opts[i] = []metric.AddOption{metric.WithAttributeSet(attribute.NewSet(svc,
				attribute.String("result", allowString(allowed)), attribute.String("reason", kind)))}
		}
		mt.decisionOpts[kind] = &opts
	}
	return &mt, nil
}

func allowString(allowed bool) string {
	if allowed {
		return "allow"
	}
	return "deny"
}

func (m *metrics) set(key string) metric.MeasurementOption {
	if s, ok := m.sets[key]; ok {
		return s
	}
	return metric.WithAttributes(attribute.String("key", key))
}

func (m *metrics) handshake(ctx context.Context, side, result string, start time.Time) {
	m.handshakes.Add(ctx, 1, m.set(side+":"+result))
	m.duration.Record(ctx, time.Since(start).Seconds(), m.set(side+":"+result))
}

func (m *metrics) acceptFailure(ctx context.Context, reason string) {
	m.acceptFail.Add(ctx, 1, m.set("accept:"+reason))
}

func (m *metrics) decision(ctx context.Context, d authz.Decision) {
	opts := m.decisionOpts[d.Kind()]
	if opts == nil { // a kind added to authz but not here
		m.decisions.Add(ctx, 1, metric.WithAttributes(m.svc,
			attribute.String("result", allowString(d.Allowed)), attribute.String("reason", d.Kind())))
		return
	}
	i := 0
	if d.Allowed {
		i = 1
	}
	m.decisions.Add(ctx, 1, opts[i]...)
}
