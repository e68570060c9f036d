package yelb_test

import (
	"fmt"
	"io"
	"net/http/httptest"

	"github.com/ztnlabs/ztn/examples/yelb/internal/yelb"
)

// The app server and the UI in one process, on the in-memory store: the
// page's calls, as the browser makes them.
func ExampleNewUI() {
	store := yelb.NewMemory()
	app, err := yelb.NewAppServer(store, store, "appserver-1")
	if err != nil {
		panic(err)
	}
	ui, err := yelb.NewUI(app)
	if err != nil {
		panic(err)
	}
	get := func(path string) {
		w := httptest.NewRecorder()
		ui.ServeHTTP(w, httptest.NewRequest("GET", path, nil))
		body, _ := io.ReadAll(w.Result().Body)
		fmt.Printf("%s -> %d %s\n", path, w.Code, body)
	}
	get("//api/getvotes")
	get("//api/getstats")
	get("//api/ihop")
	get("//api/getvotes")
	get("/api/pizzahut")
	// Output:
	// //api/getvotes -> 200 [{"name":"outback","value":0},{"name":"bucadibeppo","value":0},{"name":"ihop","value":0},{"name":"chipotle","value":0}]
	// //api/getstats -> 200 {"hostname":"appserver-1","pageviews":1}
	// //api/ihop -> 200 1
	// //api/getvotes -> 200 [{"name":"outback","value":0},{"name":"bucadibeppo","value":0},{"name":"ihop","value":1},{"name":"chipotle","value":0}]
	// /api/pizzahut -> 404 not found
}
