package api

import (
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strings"
)

// CodecPath is the codec server's endpoint: the Temporal Web UI and CLI
// are given this URL and append /encode and /decode to it.
const CodecPath = "/codec"

// MaxCodecBytes bounds one codec call's body: Temporal's gRPC messages,
// a page of history included, are at most 4 MiB, and JSON's base64 adds a
// third.
const MaxCodecBytes = 8 << 20

// CodecOptions enable the codec server: POST /codec/encode and
// /codec/decode, in Temporal's remote codec protocol, so that operators
// read encrypted histories in the Web UI and with `temporal workflow show
// --codec-endpoint`. Calls need the API key like the event API.
type CodecOptions struct {
	// Handler speaks the protocol (payloadcrypt.Codec.Handler).
	Handler http.Handler
	// AllowedOrigins are the Web UI origins allowed to call from a
	// browser (CORS), like https://temporal.example.com; none when empty
	// (the CLI needs none). Credentials (cookies of an authenticating
	// proxy) are allowed from these origins.
	AllowedOrigins []string
}

// codecHeaders are the request headers the Web UI sends: Content-Type,
// X-Namespace, and Authorization when it passes an access token.
const codecHeaders = "Content-Type, X-Namespace, Authorization"

func (s *Server) codecRoutes() {
	if c := s.opts.Codec; c != nil && c.Handler != nil {
		// Decoding reveals any customer's data: admin only.
		routeCodec(s.mux, *c, func(next http.HandlerFunc) http.Handler { return s.authed(ScopeAdmin, next) })
	}
}

// routeCodec mounts the codec endpoint on mux, each call through auth.
func routeCodec(mux *http.ServeMux, c CodecOptions, auth func(http.HandlerFunc) http.Handler) {
	call := corsFor(c.AllowedOrigins, auth(limitJSON(MaxCodecBytes, c.Handler.ServeHTTP)))
	preflight := corsFor(c.AllowedOrigins, http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		w.WriteHeader(http.StatusNoContent)
	}))
	for _, op := range []string{"encode", "decode"} {
		mux.Handle("POST "+CodecPath+"/"+op, call)
		mux.Handle("OPTIONS "+CodecPath+"/"+op, preflight)
	}
}

// DevCodecHandler is the codec endpoint WITHOUT authentication, for
// `rapport dev` alone: the Web UI of the Temporal dev server has no login
// and cannot send an API key, so rapport dev mounts this on its loopback
// API address, with CORS for the UI's origins only. Never serve it on a
// network: it decrypts any customer's data for whoever asks.
func DevCodecHandler(c CodecOptions) http.Handler {
	mux := http.NewServeMux()
	routeCodec(mux, c, func(next http.HandlerFunc) http.Handler { return next })
	return mux
}

// limitJSON refuses a body that is not JSON or is longer than n bytes;
// Server.limited is it, and DevCodecHandler uses it outside a Server.
func limitJSON(n int64, next http.HandlerFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		if ct := r.Header.Get("Content-Type"); ct != "" && !strings.HasPrefix(strings.ToLower(ct), "application/json") {
			writeError(w, http.StatusUnsupportedMediaType, fmt.Sprintf("Content-Type must be application/json, got %q", ct))
			return
		}
		r.Body = http.MaxBytesReader(w, r.Body, n)
		next(w, r)
	}
}

// corsFor answers browsers calling from one of origins: the
// Access-Control-Allow-* headers on every answer (401s included, so the
// UI can tell a refused key from a network failure), and preflight
// OPTIONS requests before any authentication (browsers send them without
// credentials). A preflight from any other origin is refused with 403;
// other calls from it are served without the headers, so the browser
// withholds the answer from the page. Calls without an Origin (the CLI)
// are unaffected.
func corsFor(origins []string, next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		origin := r.Header.Get("Origin")
		allowed := origin != "" && slices.Contains(origins, origin)
		if origin != "" {
			w.Header().Add("Vary", "Origin")
		}
		if allowed {
			h := w.Header()
			h.Set("Access-Control-Allow-Origin", origin)
			h.Set("Access-Control-Allow-Credentials", "true")
			if r.Method == http.MethodOptions {
				h.Set("Access-Control-Allow-Methods", "POST, OPTIONS")
				h.Set("Access-Control-Allow-Headers", codecHeaders)
				h.Set("Access-Control-Max-Age", "600")
			}
		} else if r.Method == http.MethodOptions {
			writeError(w, http.StatusForbidden, fmt.Sprintf("origin %q may not call the codec endpoint (RAPPORT_CODEC_ORIGINS)", origin))
			return
		}
		next.ServeHTTP(w, r)
	})
}

// ParseOrigins parses a comma-separated list of Web UI origins
// (RAPPORT_CODEC_ORIGINS): each scheme://host[:port], http or https, no
// path. "*" is refused: the endpoint answers with customers' data and
// allows credentials, so every origin must be named.
func ParseOrigins(list string) ([]string, error) {
	var out []string
	for _, o := range strings.Split(list, ",") {
		o = strings.TrimSpace(o)
		if o == "" {
			continue
		}
		if o == "*" {
			return nil, fmt.Errorf("origin *: name each Web UI origin, like https://temporal.example.com")
		}
		u, err := url.Parse(o)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || (u.Path != "" && u.Path != "/") || u.RawQuery != "" || u.User != nil {
			return nil, fmt.Errorf("origin %q: want scheme://host[:port], like https://temporal.example.com", o)
		}
		out = append(out, strings.ToLower(u.Scheme+"://"+u.Host))
	}
	return out, nil
}
