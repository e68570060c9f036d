package certsx

import (
	"bytes"
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/rsa"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"strings"
)

// The PEM parsers of the file, Consul CA and Workload API sources are
// strict: a block that is not valid PEM, a certificate that does not parse
// or a block of an unexpected type is an error, never skipped.

// PEMCertificates parses the CERTIFICATE blocks of data, in order. Blocks
// whose type ends in "PRIVATE KEY" are skipped when skipKeys is set (a
// combined cert+key file); any other block type, or bytes that are not PEM,
// is an error. At least one certificate is required.
func PEMCertificates(data []byte, skipKeys bool) ([]*x509.Certificate, error) {
	var out []*x509.Certificate
	err := eachPEMBlock(data, func(n int, b *pem.Block) error {
		switch {
		case b.Type == "CERTIFICATE":
			c, err := x509.ParseCertificate(b.Bytes)
			if err != nil {
				return fmt.Errorf("PEM block %d: %w", n, err)
			}
			out = append(out, c)
		case skipKeys && strings.HasSuffix(b.Type, "PRIVATE KEY"):
		default:
			return fmt.Errorf("PEM block %d is a %q, want CERTIFICATE", n, b.Type)
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	if len(out) == 0 {
		return nil, errors.New("no CERTIFICATE PEM block")
	}
	return out, nil
}

// PEMPrivateKey parses the one private key of data: PKCS#8 ("PRIVATE
// KEY"), SEC 1 ("EC PRIVATE KEY") or PKCS#1 ("RSA PRIVATE KEY").
// CERTIFICATE blocks are skipped when skipCerts is set (a combined
// cert+key file); any other block, a second key, an encrypted key or bytes
// that are not PEM is an error.
func PEMPrivateKey(data []byte, skipCerts bool) (crypto.Signer, error) {
	var key crypto.Signer
	err := eachPEMBlock(data, func(n int, b *pem.Block) error {
		if skipCerts && b.Type == "CERTIFICATE" {
			return nil
		}
		if !strings.HasSuffix(b.Type, "PRIVATE KEY") {
			return fmt.Errorf("PEM block %d is a %q, want a private key", n, b.Type)
		}
		if key != nil {
			return fmt.Errorf("PEM block %d: a second private key", n)
		}
		if _, encrypted := b.Headers["DEK-Info"]; encrypted || b.Type == "ENCRYPTED PRIVATE KEY" {
			return fmt.Errorf("PEM block %d: the private key is encrypted", n)
		}
		k, err := parsePrivateKeyDER(b.Type, b.Bytes)
		if err != nil {
			return fmt.Errorf("PEM block %d (%s): %w", n, b.Type, err)
		}
		key = k
		return nil
	})
	if err != nil {
		return nil, err
	}
	if key == nil {
		return nil, errors.New("no private key PEM block")
	}
	return key, nil
}

// eachPEMBlock calls f with each PEM block of data and its number (from
// 1), and stops at f's first error. Data that is empty, or has anything
// but PEM blocks and white space, is an error.
func eachPEMBlock(data []byte, f func(n int, b *pem.Block) error) error {
	rest := bytes.TrimSpace(data)
	if len(rest) == 0 {
		return errors.New("empty")
	}
	for n := 1; len(rest) > 0; n++ {
		var b *pem.Block
		b, rest = pem.Decode(rest)
		if b == nil {
			return fmt.Errorf("PEM block %d: not PEM", n)
		}
		rest = bytes.TrimSpace(rest)
		if err := f(n, b); err != nil {
			return err
		}
	}
	return nil
}

func parsePrivateKeyDER(typ string, der []byte) (crypto.Signer, error) {
	var (
		k   any
		err error
	)
	switch typ {
	case "PRIVATE KEY":
		k, err = x509.ParsePKCS8PrivateKey(der)
	case "EC PRIVATE KEY":
		k, err = x509.ParseECPrivateKey(der)
	case "RSA PRIVATE KEY":
		k, err = x509.ParsePKCS1PrivateKey(der)
	default:
		return nil, fmt.Errorf("unsupported private key type %q (want PKCS#8, SEC 1 EC or PKCS#1 RSA)", typ)
	}
	if err != nil {
		return nil, err
	}
	switch k := k.(type) {
	case *ecdsa.PrivateKey:
		return k, nil
	case *rsa.PrivateKey:
		return k, nil
	case ed25519.PrivateKey:
		return k, nil
	}
	return nil, fmt.Errorf("unsupported private key %T", k)
}
