package yelb

import (
	"context"
	"fmt"
	"sync"
)

// Memory is a [VoteStore] and [PageViewCounter] in memory, for when no
// Postgres or Redis is at hand: the counts start at zero and are lost when
// the process ends. It is safe for concurrent use.
type Memory struct {
	mu        sync.Mutex
	votes     map[string]int64
	pageviews int64
}

// NewMemory returns an empty Memory: four zero counts, no page views.
func NewMemory() *Memory {
	m := &Memory{votes: make(map[string]int64, len(restaurants))}
	for _, r := range restaurants {
		m.votes[r] = 0
	}
	return m
}

// Votes implements [VoteStore].
func (m *Memory) Votes(ctx context.Context) ([]Vote, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	votes := make([]Vote, len(restaurants))
	for i, r := range restaurants {
		votes[i] = Vote{Name: r, Value: m.votes[r]}
	}
	return votes, nil
}

// Vote implements [VoteStore].
func (m *Memory) Vote(ctx context.Context, restaurant string) (int64, error) {
	if err := ctx.Err(); err != nil {
		return 0, err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	n, ok := m.votes[restaurant]
	if !ok {
		return 0, fmt.Errorf("%w %q", ErrUnknownRestaurant, restaurant)
	}
	m.votes[restaurant] = n + 1
	return n + 1, nil
}

// PageView implements [PageViewCounter].
func (m *Memory) PageView(ctx context.Context) (int64, error) {
	if err := ctx.Err(); err != nil {
		return 0, err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	m.pageviews++
	return m.pageviews, nil
}
