package certsx

import (
	"log/slog"
	"time"

	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/metric"
)

// Config is what certs.Option sets: certs.Option is a func(*Config), so a
// backend applies the options its constructor was given with NewConfig.
type Config struct {
	Logger           *slog.Logger
	MeterProvider    metric.MeterProvider
	MinBackoff       time.Duration
	MaxBackoff       time.Duration
	RootChangeWindow time.Duration
}

// NewConfig applies opts to the defaults: backoff from 1s to 1min, a root
// change window of 30s, slog.Default() and otel.GetMeterProvider().
func NewConfig[O ~func(*Config)](opts []O) Config {
	c := Config{
		MinBackoff:       time.Second,
		MaxBackoff:       time.Minute,
		RootChangeWindow: 30 * time.Second,
	}
	for _, o := range opts {
		o(&c)
	}
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
	if c.MeterProvider == nil {
		c.MeterProvider = otel.GetMeterProvider()
	}
	return c
}
