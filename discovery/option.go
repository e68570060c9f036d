package discovery

import "time"

// BalancerOption configures [NewBalancer].
type BalancerOption func(*balancerConfig)

type balancerConfig struct {
	ejectAfter  int           // consecutive failures that eject an instance
	ejectFor    time.Duration // how long a first ejection lasts
	maxEjectFor time.Duration // the cap of repeated ejections' doubling
}

// WithEjection sets when a [Balancer] ejects an instance and for how long:
// after failures consecutive failed dials (default 3), for ejectFor the
// first time (default 10s), doubling with each further ejection up to
// maxEjectFor (default 5m). A zero or negative value keeps its default.
func WithEjection(failures int, ejectFor, maxEjectFor time.Duration) BalancerOption {
	return func(c *balancerConfig) {
		c.ejectAfter, c.ejectFor, c.maxEjectFor = failures, ejectFor, maxEjectFor
	}
}
