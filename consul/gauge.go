package consul

import "go.opentelemetry.io/otel/metric"

// stalenessGauge makes the gauge name (in seconds) of how long a watcher's
// data has gone unconfirmed by Consul, with the meter it belongs to, from
// which the watcher registers its callback.
func stalenessGauge(mp metric.MeterProvider, name, description string) (metric.Meter, metric.Float64ObservableGauge, error) {
	m := mp.Meter("github.com/ztnlabs/ztn/consul")
	g, err := m.Float64ObservableGauge(name, metric.WithUnit("s"), metric.WithDescription(description))
	return m, g, err
}

// unregister removes a watcher's gauge callback, if it has one.
func unregister(r metric.Registration) error {
	if r == nil {
		return nil
	}
	return r.Unregister()
}
