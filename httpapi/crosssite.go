package httpapi

import (
	"net"
	"net/url"
	"strings"
)

// SafeMethod reports whether an HTTP method is one that must not change
// state (GET, HEAD, OPTIONS), so needs no cross-site check.
func SafeMethod(method string) bool {
	switch strings.ToUpper(method) {
	case "GET", "HEAD", "OPTIONS":
		return true
	}
	return false
}

// CrossSite reports whether a browser sent this payload-2.0 request on
// behalf of another site (cross-site request forgery), from the headers
// browsers set and pages cannot forge (docs/design.md §10):
//
//  1. Sec-Fetch-Site, when present: "cross-site" is cross-site;
//     "same-origin", "same-site" and "none" (typed by the user) are not; any
//     other value counts as cross-site.
//  2. Otherwise Origin, when present: "null" (sandboxed frames, file: pages,
//     some redirects) or an origin whose host[:port] differs from the
//     request's Host header (domainName when Host is absent) is cross-site.
//  3. Neither header: not a browser's cross-site request (mini-programs,
//     curl and server-to-server clients send neither), so false.
//
// Header names are matched in any case (API Gateway sends them in lower
// case). Ports 443 and 80 are ignored on both sides.
func CrossSite(headers map[string]string, domainName string) bool {
	if v, ok := header(headers, "sec-fetch-site"); ok {
		switch strings.ToLower(strings.TrimSpace(v)) {
		case "same-origin", "same-site", "none":
			return false
		}
		return true
	}
	origin, ok := header(headers, "origin")
	if !ok {
		return false
	}
	origin = strings.TrimSpace(origin)
	u, err := url.Parse(origin)
	if origin == "null" || err != nil || u.Host == "" || (u.Scheme != "https" && u.Scheme != "http") {
		return true
	}
	host, ok := header(headers, "host")
	if !ok || host == "" {
		host = domainName
	}
	return hostPort(u.Host) != hostPort(host)
}

// hostPort lower-cases a host[:port] and drops a default port.
func hostPort(hp string) string {
	hp = strings.ToLower(strings.TrimSpace(hp))
	if h, p, err := net.SplitHostPort(hp); err == nil && (p == "443" || p == "80") {
		return h
	}
	return hp
}

// header returns the value of a header whose name is given in lower case,
// looking it up in any case.
func header(headers map[string]string, lower string) (string, bool) {
	if v, ok := headers[lower]; ok {
		return v, true
	}
	for k, v := range headers {
		if len(k) == len(lower) && strings.EqualFold(k, lower) {
			return v, true
		}
	}
	return "", false
}

// Header returns the value of the header name, looked up in any case, in a
// payload-2.0 header map (API Gateway lower-cases the names; tests and
// other gateways may not); "" when absent.
func Header(headers map[string]string, name string) string {
	v, _ := header(headers, strings.ToLower(name))
	return v
}
