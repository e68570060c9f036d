package main

import (
	"go.opentelemetry.io/otel/metric"
	"go.opentelemetry.io/otel/trace"

	"github.com/ztnlabs/ztn/ztnet"
)

// providers are one service's OpenTelemetry providers; a nil one means
// OpenTelemetry's global (a no-op unless the program sets one).
type providers struct {
	tracer trace.TracerProvider
	meter  metric.MeterProvider
}

// ztnOptions hands the providers to the service's ztnet.Service, which
// passes them on to grpcztn and httpztn.
func (p providers) ztnOptions() []ztnet.Option {
	var opts []ztnet.Option
	if p.tracer != nil {
		opts = append(opts, ztnet.WithTracerProvider(p.tracer))
	}
	if p.meter != nil {
		opts = append(opts, ztnet.WithMeterProvider(p.meter))
	}
	return opts
}

// providersOf returns the providers of service, as rc.telemetry gives them.
func (c roleConfig) providersOf(service string) providers {
	if c.telemetry == nil {
		return providers{}
	}
	return c.telemetry(service)
}
