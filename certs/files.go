package certs

import (
	"cmp"
	"context"
	"crypto"
	"crypto/sha256"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"runtime"
	"time"

	"github.com/spiffe/go-spiffe/v2/bundle/x509bundle"
	"github.com/spiffe/go-spiffe/v2/spiffeid"
	"github.com/spiffe/go-spiffe/v2/svid/x509svid"

	"github.com/ztnlabs/ztn/internal/certsx"
)

// DefaultFilesPollInterval is how often a Files source checks its files for
// changes unless FilesConfig.PollInterval says otherwise.
const DefaultFilesPollInterval = 5 * time.Second

// maxPEMFileSize bounds what a Files source reads from each file.
const maxPEMFileSize = 1 << 20

// FilesConfig configures NewFiles. Cert, Key and Bundle are required.
type FilesConfig struct {
	// Cert is a PEM file with the leaf certificate first, then any
	// intermediates (e.g. Vault Agent's pkiCert .Cert + .CA, cert-manager's
	// tls.crt). Private key blocks in it are ignored, so it may also be the
	// Key file.
	Cert string
	// Key is a PEM file with the leaf's private key: PKCS#8 ("PRIVATE
	// KEY"), SEC 1 ("EC PRIVATE KEY") or PKCS#1 ("RSA PRIVATE KEY"),
	// unencrypted. Certificate blocks in it are ignored. The file (the one
	// a symlink points to, as in Kubernetes' secret volumes) must not be
	// readable by its group or others: mode 0600 or 0400 (Kubernetes:
	// defaultMode 0400), else it is refused, unless AllowReadableKey.
	Key string
	// Bundle is a PEM file with the trust anchors of the leaf's trust domain
	// (e.g. cert-manager's ca.crt): CA certificates, usually the roots.
	// Peers are verified against exactly these.
	Bundle string
	// TrustDomain, if set, is the trust domain the leaf must belong to.
	TrustDomain spiffeid.TrustDomain
	// PollInterval is how often the files are read for changes (default
	// DefaultFilesPollInterval). Each poll reads the three files and
	// compares their SHA-256 with the last ones.
	PollInterval time.Duration
	// AllowReadableKey loads a Key file that its group or others may read,
	// logging a warning at each load instead of refusing it: for platforms
	// whose permission bits do not say who can read (some network or
	// FUSE file systems). Anyone who can read the key can impersonate the
	// service.
	AllowReadableKey bool
}

// Files is a Source whose SVID and trust bundle come from PEM files written
// by another program, such as Vault Agent or cert-manager, and reloaded when
// they change. Create it with NewFiles.
//
// Every load is validated before it is used: the key file must be readable
// by its owner only (see FilesConfig.Key) and the key must match the leaf;
// the leaf must carry exactly one URI SAN, a SPIFFE ID with a path, the same
// one as the first load (the identity of a Files source never changes); it
// must not be a CA, and its extended key usages, if any, must allow both
// client and server authentication; the chain must verify, now, against the
// bundle. A load that fails (garbage PEM, a key for another certificate, a
// certificate that does not chain to the bundle, an expired certificate...)
// keeps the last good SVID and bundle in use; if the files are still in that
// state at the next poll (programs rewrite them one after the other: a new
// key, then its certificate), it is logged at warn level and counted as a
// failed rotation in ztn.certs.rotations. The files are read at every poll.
//
// Files never hands out an expired leaf: once the current one has expired
// and no valid replacement has appeared, GetX509SVID fails (fail closed).
// The bundle is replaced as a whole by each good load: roots removed from
// the bundle file are no longer trusted (unlike a Rotator's, which keeps old
// roots until the leaves under them expire — the program writing the files
// owns that overlap).
//
// Changed (Watcher) is closed on each good reload and on Close. Metrics and
// logs are those of a Rotator (see the package documentation). A Files is
// safe for concurrent use.
type Files struct {
	cfg FilesConfig
	rc  config

	state              // mu also guards id and bundle; lastErr is of the last load attempt
	id     spiffeid.ID // fixed by the first load
	bundle *x509bundle.Bundle

	// Only the poll goroutine (and NewFiles before it starts) touches these.
	seen        [sha256.Size]byte // hash of the files last parsed
	seenErr     error             // the result of parsing them
	pending     string            // a failed state seen at the last poll, not reported yet
	warnedLeaf  *x509.Certificate // expired leaf already reported
	warnedStale *x509.Certificate // leaf past 90% of its life already reported
}

var (
	_ Source  = (*Files)(nil)
	_ Watcher = (*Files)(nil)
)

// NewFiles loads the files, validates them (see Files) and starts polling
// them for changes until Close. Any problem with the first load is an error
// that names the file and what is wrong with it. ctx bounds the first load
// only. opts take WithLogger and WithMeterProvider; the other Options are
// about issuance and do not apply.
func NewFiles(ctx context.Context, cfg FilesConfig, opts ...Option) (*Files, error) {
	switch {
	case cfg.Cert == "":
		return nil, errors.New("certs: files: no Cert file in FilesConfig")
	case cfg.Key == "":
		return nil, errors.New("certs: files: no Key file in FilesConfig")
	case cfg.Bundle == "":
		return nil, errors.New("certs: files: no Bundle file in FilesConfig")
	case cfg.PollInterval < 0:
		return nil, fmt.Errorf("certs: files: negative PollInterval %v", cfg.PollInterval)
	}
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("certs: files: %w", err)
	}
	cfg.PollInterval = cmp.Or(cfg.PollInterval, DefaultFilesPollInterval)
	f := &Files{cfg: cfg, rc: newConfig(opts)}
	m, err := certsx.NewMetrics(f.rc.MeterProvider, f.observe)
	if err != nil {
		return nil, fmt.Errorf("certs: files: %w", err)
	}
	f.metrics = m

	raw, hash, keyMode, err := f.readFiles()
	var (
		svid   *x509svid.SVID
		bundle *x509bundle.Bundle
	)
	if err == nil {
		svid, bundle, err = parseFiles(cfg, raw[0], raw[1], raw[2], spiffeid.ID{}, time.Now())
	}
	m.Rotation(err)
	if err != nil {
		_ = m.Close()
		return nil, err
	}
	f.seen = hash
	f.id, f.svid, f.bundle = svid.ID, svid, bundle
	f.logLoaded(svid, bundle, "certs: files: SVID loaded")
	f.warnKeyMode(keyMode)

	bg, cancel := context.WithCancel(context.WithoutCancel(ctx))
	f.cancel, f.made = cancel, true
	f.wg.Go(func() { f.poll(bg) })
	return f, nil
}

// GetX509SVID returns the current SVID, or an error if its leaf has expired
// (or is not valid yet) or the source is closed. It implements
// x509svid.Source.
func (f *Files) GetX509SVID() (*x509svid.SVID, error) { return f.currentSVID(filesKind) }

// GetX509BundleForTrustDomain returns the bundle of td, which must be the
// SVID's trust domain. It implements x509bundle.Source. The returned bundle
// must not be modified.
func (f *Files) GetX509BundleForTrustDomain(td spiffeid.TrustDomain) (*x509bundle.Bundle, error) {
	return f.currentBundle(td, filesKind, func() *x509bundle.Bundle {
		if td != f.bundle.TrustDomain() {
			return nil
		}
		return f.bundle
	})
}

// Changed returns a channel closed at the next good reload or Close. It
// implements Watcher.
func (f *Files) Changed() <-chan struct{} {
	return f.changed.Changed()
}

// Close stops polling and wakes the watchers. Afterwards the getters return
// ErrClosed. Close is idempotent.
func (f *Files) Close() error { return f.close(filesKind) }

// poll reloads the files every PollInterval until ctx is done.
func (f *Files) poll(ctx context.Context) {
	ticker := time.NewTicker(f.cfg.PollInterval)
	defer ticker.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-ticker.C:
		}
		f.reload()
	}
}

// reload reads the files and, if they changed since the last read, loads
// them.
func (f *Files) reload() {
	raw, hash, keyMode, err := f.readFiles()
	if err != nil {
		// Unreadable (e.g. removed while being replaced): try again at each
		// poll; report a given error once, if it lasts.
		if f.settled("read: " + err.Error()) {
			f.mu.RLock()
			same := f.lastErr != nil && f.lastErr.Error() == err.Error()
			f.mu.RUnlock()
			if !same {
				f.failed(err)
			}
		}
		f.checkExpiry()
		return
	}
	if hash == f.seen {
		// Unchanged since the last load; after a read error, its result
		// stands again.
		f.pending = ""
		f.mu.Lock()
		restored := f.lastErr != nil && f.seenErr == nil
		f.lastErr = f.seenErr
		f.mu.Unlock()
		if restored {
			f.rc.Logger.Info("certs: files: the files are readable again and unchanged", "cert", f.cfg.Cert)
		}
		f.checkExpiry()
		return
	}
	svid, bundle, err := parseFiles(f.cfg, raw[0], raw[1], raw[2], f.id, time.Now())
	if err != nil {
		// Files are rewritten one after the other (a new key, then its
		// certificate): a bad state is reported only if it lasts a poll.
		if f.settled(fmt.Sprintf("parse: %x", hash)) {
			f.seen, f.seenErr = hash, err
			f.failed(err)
		}
		f.checkExpiry()
		return
	}
	f.pending = ""
	f.seen, f.seenErr = hash, nil
	f.metrics.Rotation(nil)
	f.mu.Lock()
	f.lastErr = nil
	f.svid, f.bundle = svid, bundle
	f.mu.Unlock()
	f.logLoaded(svid, bundle, "certs: files: SVID reloaded")
	f.warnKeyMode(keyMode)
	f.changed.Notify()
}

// settled reports whether the failed state key was already there at the
// previous poll, and remembers it for the next one.
func (f *Files) settled(key string) bool {
	ok := f.pending == key
	f.pending = key
	return ok
}

// failed records and reports a failed reload.
func (f *Files) failed(err error) {
	f.metrics.Rotation(err)
	f.mu.Lock()
	f.lastErr = err
	cur := f.svid
	f.mu.Unlock()
	leaf := cur.Certificates[0]
	f.rc.Logger.Warn("certs: files: reload failed; keeping the last good SVID and bundle",
		"error", err, "spiffe_id", cur.ID.String(), "serial", leaf.SerialNumber.Text(16),
		"expires_in", time.Until(leaf.NotAfter).Round(time.Second), "expired", time.Now().After(leaf.NotAfter))
}

// checkExpiry logs, once per leaf, when the current leaf is past 90% of its
// lifetime without a replacement, and when it has expired.
func (f *Files) checkExpiry() {
	f.mu.RLock()
	svid := f.svid
	f.mu.RUnlock()
	leaf := svid.Certificates[0]
	now := time.Now()
	life := leaf.NotAfter.Sub(leaf.NotBefore)
	switch {
	case now.After(leaf.NotAfter) && f.warnedLeaf != leaf:
		f.warnedLeaf = leaf
		f.rc.Logger.Error("certs: files: the SVID has expired and no valid replacement has appeared; failing closed",
			"spiffe_id", svid.ID.String(), "serial", leaf.SerialNumber.Text(16), "not_after", leaf.NotAfter, "cert", f.cfg.Cert)
	case now.After(leaf.NotBefore.Add(life*9/10)) && f.warnedStale != leaf && f.warnedLeaf != leaf:
		f.warnedStale = leaf
		f.rc.Logger.Warn("certs: files: the SVID is past 90% of its lifetime and has not been replaced",
			"spiffe_id", svid.ID.String(), "serial", leaf.SerialNumber.Text(16),
			"expires_in", leaf.NotAfter.Sub(now).Round(time.Second), "cert", f.cfg.Cert)
	}
}

// readFiles reads the cert, key and bundle files and returns their
// contents, their combined hash (which covers the key file's mode, so that a
// chmod alone is a change) and the key file's permission bits. A key file
// readable by group or others is an error unless AllowReadableKey.
func (f *Files) readFiles() (raw [3][]byte, hash [sha256.Size]byte, keyMode fs.FileMode, err error) {
	h := sha256.New()
	for i, p := range []string{f.cfg.Cert, f.cfg.Key, f.cfg.Bundle} {
		var mode fs.FileMode
		if raw[i], mode, err = readPEMFile(p); err != nil {
			return raw, hash, 0, fmt.Errorf("certs: files: %w", err)
		}
		if i == 1 {
			keyMode = mode
			if err := checkKeyMode(p, mode); err != nil && !f.cfg.AllowReadableKey {
				return raw, hash, 0, err
			}
		}
		fmt.Fprintf(h, "%d:%o:", len(raw[i]), mode)
		h.Write(raw[i])
	}
	return raw, [sha256.Size]byte(h.Sum(nil)), keyMode, nil
}

// checkKeyMode refuses a key file whose permission bits let its group or
// others read it. Windows has no such bits: nothing is checked there.
func checkKeyMode(path string, mode fs.FileMode) error {
	if runtime.GOOS == "windows" || mode&0o044 == 0 {
		return nil
	}
	return fmt.Errorf("certs: files: key file %s has mode %#o: readable by its group or others; "+
		"make it 0600 or 0400 (chmod go-rwx; Kubernetes: defaultMode 0400), or set FilesConfig.AllowReadableKey", path, mode)
}

// warnKeyMode logs, when AllowReadableKey let a readable key file in, that
// it did.
func (f *Files) warnKeyMode(mode fs.FileMode) {
	if err := checkKeyMode(f.cfg.Key, mode); err != nil {
		f.rc.Logger.Warn("certs: files: loaded a private key that its group or others can read (AllowReadableKey)",
			"key", f.cfg.Key, "mode", fmt.Sprintf("%#o", mode))
	}
}

// parseFiles validates the contents of the cert, key and bundle files.
func parseFiles(cfg FilesConfig, certPEM, keyPEM, bundlePEM []byte, want spiffeid.ID, now time.Time) (*x509svid.SVID, *x509bundle.Bundle, error) {
	chain, err := certsx.PEMCertificates(certPEM, true)
	if err != nil {
		return nil, nil, fmt.Errorf("certs: files: certificate file %s: %w", cfg.Cert, err)
	}
	var key crypto.Signer
	if key, err = certsx.PEMPrivateKey(keyPEM, true); err != nil {
		return nil, nil, fmt.Errorf("certs: files: key file %s: %w", cfg.Key, err)
	}
	id, err := certsx.CheckSVIDChain(chain, key)
	if err != nil {
		return nil, nil, fmt.Errorf("certs: files: %s and %s: not a valid X509-SVID: %w", cfg.Cert, cfg.Key, err)
	}
	td := id.TrustDomain()
	switch {
	case !cfg.TrustDomain.IsZero() && td != cfg.TrustDomain:
		return nil, nil, fmt.Errorf("certs: files: certificate file %s: SPIFFE ID %s is not in trust domain %s", cfg.Cert, id, cfg.TrustDomain)
	case !want.IsZero() && id != want:
		return nil, nil, fmt.Errorf("certs: files: certificate file %s: SPIFFE ID %s, want %s (the identity of a source never changes)", cfg.Cert, id, want)
	}
	roots, err := certsx.PEMCertificates(bundlePEM, false)
	if err != nil {
		return nil, nil, fmt.Errorf("certs: files: bundle file %s: %w", cfg.Bundle, err)
	}
	for i, r := range roots {
		if !r.IsCA {
			return nil, nil, fmt.Errorf("certs: files: bundle file %s: certificate %d (%s) is not a CA certificate", cfg.Bundle, i+1, certsx.CertName(r))
		}
	}
	bundle := x509bundle.FromX509Authorities(td, roots)
	if _, _, err := x509svid.Verify(chain, bundle, x509svid.WithTime(now)); err != nil {
		leaf := chain[0]
		switch {
		case now.After(leaf.NotAfter):
			return nil, nil, fmt.Errorf("certs: files: certificate file %s: the leaf expired at %s", cfg.Cert, leaf.NotAfter.Format(time.RFC3339))
		case now.Before(leaf.NotBefore):
			return nil, nil, fmt.Errorf("certs: files: certificate file %s: the leaf is not valid before %s", cfg.Cert, leaf.NotBefore.Format(time.RFC3339))
		}
		return nil, nil, fmt.Errorf("certs: files: certificate file %s does not verify against bundle file %s: %w", cfg.Cert, cfg.Bundle, err)
	}
	return &x509svid.SVID{ID: id, Certificates: chain, PrivateKey: key}, bundle, nil
}

// readPEMFile reads at most maxPEMFileSize bytes of path, and returns them
// with the permission bits of the file read (behind any symlink).
func readPEMFile(path string) ([]byte, fs.FileMode, error) {
	fh, err := os.Open(path)
	if err != nil {
		return nil, 0, err
	}
	defer fh.Close()
	st, err := fh.Stat()
	if err != nil {
		return nil, 0, fmt.Errorf("stat %s: %w", path, err)
	}
	b, err := io.ReadAll(io.LimitReader(fh, maxPEMFileSize+1))
	if err != nil {
		return nil, 0, fmt.Errorf("read %s: %w", path, err)
	}
	if len(b) > maxPEMFileSize {
		return nil, 0, fmt.Errorf("%s is larger than %d bytes", path, maxPEMFileSize)
	}
	return b, st.Mode().Perm(), nil
}

func (f *Files) logLoaded(svid *x509svid.SVID, bundle *x509bundle.Bundle, msg string) {
	leaf := svid.Certificates[0]
	f.rc.Logger.Info(msg,
		"spiffe_id", svid.ID.String(), "serial", leaf.SerialNumber.Text(16), "not_after", leaf.NotAfter,
		"roots", len(bundle.X509Authorities()), "cert", f.cfg.Cert)
}

// observe reports the SVID and bundle, for the metrics.
func (f *Files) observe() (certsx.Observation, bool) {
	f.mu.RLock()
	defer f.mu.RUnlock()
	if f.closed || f.svid == nil {
		return certsx.Observation{}, false
	}
	return certsx.Observation{SVID: f.svid, Bundles: []*x509bundle.Bundle{f.bundle}}, true
}
