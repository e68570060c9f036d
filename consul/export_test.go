package consul

// RetryWrite is retryWrite, for the external tests.
var RetryWrite = retryWrite
