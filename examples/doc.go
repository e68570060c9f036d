// Package examples holds runnable ports of well-known demo apps onto ztn;
// each is also an integration test. See fortune/.
package examples
