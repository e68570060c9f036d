// Package certsx holds what package certs and its backends (certs/vault,
// certs/consulca, certs/workloadapi) share but do not export: the options'
// configuration, the retry backoff, the rotation metrics and the strict
// PEM and X509-SVID checks. It links none of the backends' client
// libraries.
package certsx
