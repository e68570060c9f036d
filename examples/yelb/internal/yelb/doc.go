// Package yelb is the Yelb voting app (github.com/mreferre/yelb) without
// its transport: the app server's HTTP API ([AppServer]), the page and its
// /api forwarding ([UI], [NewAPIProxy]), and the stores behind the API —
// Postgres for the votes ([Postgres]), Redis for the page views ([Redis]),
// both over TLS with a client certificate and no password, and [Memory] for
// when neither is installed.
//
// The behaviour is the original's, made exact where the original is loose
// (see ../../README.md and the project's spec of the examples): the same
// endpoints, bodies and order, the same seed rows, the same page text. How
// the pieces reach each other (plain HTTP, or ztn's mutual TLS with
// intentions) is up to the caller: every constructor takes an
// [http.Handler], an [http.RoundTripper] or a [*tls.Config].
//
// # Wiring
//
// The whole app in one process, on an in-memory store:
//
//	store := yelb.NewMemory()
//	app, err := yelb.NewAppServer(store, store, "appserver-1")
//	...
//	ui, err := yelb.NewUI(app)
//	...
//	http.ListenAndServe("127.0.0.1:8080", ui)
//
// With the stores of the original, each connection authenticated by a
// client certificate (cfg: a tls.Config with RootCAs and the certificate,
// or GetClientCertificate for one that rotates):
//
//	votes, err := yelb.NewPostgres("db:5432", "yelb-appserver", cfg)
//	views, err := yelb.NewRedis("redis:6379", cfg)
//	app, err := yelb.NewAppServer(votes, views, "")
//
// And the UI in another process than the app server:
//
//	api, err := yelb.NewAPIProxy(&url.URL{Scheme: "http", Host: "appserver:4567"}, transport)
//	ui, err := yelb.NewUI(api)
package yelb
