package redisconn

import (
	"errors"
	"net/url"
	"strings"
)

// redactedURL is the -store URL as it may be printed: with its
// password, if any, replaced by xxxxx (url.URL.Redacted). A URL that does
// not parse and has user information is cut after its scheme, since where
// its password ends cannot be told. host:port lists carry no password.
func redactedURL(store string) string {
	scheme, _, isURL := strings.Cut(store, "://")
	if !isURL {
		return store
	}
	u, err := url.Parse(store)
	switch {
	case err == nil:
		return u.Redacted()
	case strings.Contains(store, "@"):
		return scheme + "://(rest not shown: it may hold a password)"
	default:
		return store
	}
}

// urlError explains why rueidis refused the -store URL without
// quoting it: net/url's parse errors quote the whole URL, password
// included, and where it does not parse even the reason may show part of
// the password, so then only a hint is given.
func urlError(store string, err error) string {
	var ue *url.Error
	if !errors.As(err, &ue) {
		return err.Error() // rueidis's own reasons name the scheme, path or query
	}
	if strings.Contains(store, "@") {
		return "not a valid URL (percent-encode any of : / @ ? # in the user name or password)"
	}
	return ue.Err.Error()
}
