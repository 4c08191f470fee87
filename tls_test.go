package main

import (
	"crypto/tls"
	"net"
	"testing"
	"time"

	"northd/internal/testdeps"
)

// TestTLS12OffersOnlyAEADSuites: over TLS 1.2 the server takes only the
// AEAD suites of Mozilla's "intermediate" profile; a client that offers
// only a CBC-SHA1 suite fails its handshake. TLS 1.3 stays.
func TestTLS12OffersOnlyAEADSuites(t *testing.T) {
	certFile, keyFile, roots := testdeps.SelfSignedCert(t, t.TempDir(), "suites")
	cert, err := newCertificate(certFile, keyFile)
	if err != nil {
		t.Fatal(err)
	}
	ln, err := tls.Listen("tcp", "127.0.0.1:0", cert.serverConfig())
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				c.SetDeadline(time.Now().Add(time.Minute))
				c.(*tls.Conn).Handshake()
			}()
		}
	}()
	handshake := func(cfg *tls.Config) (tls.ConnectionState, error) {
		cfg.RootCAs, cfg.ServerName = roots, "127.0.0.1"
		c, err := tls.DialWithDialer(&net.Dialer{Timeout: time.Minute}, "tcp", ln.Addr().String(), cfg)
		if err != nil {
			return tls.ConnectionState{}, err
		}
		defer c.Close()
		return c.ConnectionState(), nil
	}

	for _, suite := range []uint16{tls.TLS_ECDHE_ECDSA_WITH_AES_128_CBC_SHA, tls.TLS_ECDHE_ECDSA_WITH_AES_256_CBC_SHA} {
		if st, err := handshake(&tls.Config{MaxVersion: tls.VersionTLS12, CipherSuites: []uint16{suite}}); err == nil {
			t.Errorf("TLS 1.2 with only %s: the server agreed to %s", tls.CipherSuiteName(suite), tls.CipherSuiteName(st.CipherSuite))
		}
	}
	for _, suite := range []uint16{tls.TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256, tls.TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384, tls.TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256} {
		st, err := handshake(&tls.Config{MaxVersion: tls.VersionTLS12, CipherSuites: []uint16{suite}})
		if err != nil || st.Version != tls.VersionTLS12 || st.CipherSuite != suite {
			t.Errorf("TLS 1.2 with %s: %v, version %x, suite %s", tls.CipherSuiteName(suite), err, st.Version, tls.CipherSuiteName(st.CipherSuite))
		}
	}
	if st, err := handshake(&tls.Config{}); err != nil || st.Version != tls.VersionTLS13 {
		t.Errorf("TLS 1.3: %v, version %x", err, st.Version)
	}
}
