package yelb

import (
	"context"
	"errors"
	"slices"
)

// The restaurants, in the order getvotes lists them (the original's order,
// not the seed's nor the page's).
var restaurants = []string{"outback", "bucadibeppo", "ihop", "chipotle"}

// Restaurants returns the names of the four restaurants, in the order
// /api/getvotes lists them: outback, bucadibeppo, ihop, chipotle.
func Restaurants() []string { return slices.Clone(restaurants) }

// IsRestaurant reports whether name is one of [Restaurants].
func IsRestaurant(name string) bool { return slices.Contains(restaurants, name) }

// ErrUnknownRestaurant is returned for a vote for a name that is not one of
// [Restaurants] (or whose row is missing from the database).
var ErrUnknownRestaurant = errors.New("yelb: unknown restaurant")

// Vote is one restaurant's count, as /api/getvotes serializes it.
type Vote struct {
	Name  string `json:"name"`
	Value int64  `json:"value"`
}

// VoteStore keeps the votes (Postgres in the original; [Postgres] and
// [Memory] here).
type VoteStore interface {
	// Votes returns every restaurant's count, in the order of
	// [Restaurants].
	Votes(ctx context.Context) ([]Vote, error)
	// Vote adds one vote for restaurant and returns its new count.
	Vote(ctx context.Context, restaurant string) (int64, error)
}

// PageViewCounter counts page views (Redis in the original; [Redis] and
// [Memory] here).
type PageViewCounter interface {
	// PageView counts one page view and returns the count, this one
	// included.
	PageView(ctx context.Context) (int64, error)
}
