package certs

// Helpers of the internal tests that the external tests (package
// certs_test) use too.

// CollectMetrics is collect: the rotation counts by result and the expiry
// gauge by SPIFFE ID.
var CollectMetrics = collect
