package workloadapi

import (
	"errors"
	"fmt"
	"sync"
)

// clientLog routes go-spiffe's Workload API client log to the source's
// logger; its errors count as failed rotations.
type clientLog struct {
	w       *Source
	mu      sync.Mutex
	lastMsg string
}

func (l *clientLog) Debugf(format string, args ...any) {
	l.w.log.Debug("workloadapi: " + fmt.Sprintf(format, args...))
}

func (l *clientLog) Infof(format string, args ...any) {
	l.w.log.Info("workloadapi: " + fmt.Sprintf(format, args...))
}

func (l *clientLog) Warnf(format string, args ...any) {
	l.w.log.Warn("workloadapi: " + fmt.Sprintf(format, args...))
}

func (l *clientLog) Errorf(format string, args ...any) {
	msg := fmt.Sprintf(format, args...)
	l.mu.Lock()
	l.lastMsg = msg
	l.mu.Unlock()
	l.w.mu.RLock()
	started := l.w.svid != nil
	l.w.mu.RUnlock()
	if !started {
		// Before the first SVID New is still waiting: debug
		// only, its error will say what went wrong.
		l.w.log.Debug("workloadapi: " + msg)
		return
	}
	l.w.failed(errors.New("workloadapi: " + msg))
}

func (l *clientLog) last() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.lastMsg
}
