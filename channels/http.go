package channels

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"
)

// post sends one request and classifies the outcome the way HTTP APIs
// mean it: 2xx delivered; 408 and 429 and 5xx transient; any other 4xx
// permanent (the request itself is wrong and will stay wrong); transport
// errors transient. The returned error never contains the endpoint URL,
// which may carry credentials.
func post(ctx context.Context, client *http.Client, req *http.Request, prefix string) ([]byte, error) {
	resp, err := client.Do(req.WithContext(ctx))
	if err != nil {
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err // drop "Post <url>:"
		}
		return nil, TransientError(prefix+"_unavailable", fmt.Errorf("%s: request failed: %w", prefix, err))
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
	code := resp.StatusCode
	if code >= 200 && code < 300 {
		return body, nil
	}
	err = fmt.Errorf("%s: provider answered %s: %s", prefix, resp.Status, snippet(body))
	reason := "http_" + strconv.Itoa(code)
	if code >= 400 && code < 500 && code != http.StatusRequestTimeout && code != http.StatusTooManyRequests {
		return nil, PermanentError(reason, err)
	}
	return nil, TransientError(reason, err)
}

// snippet is the start of a provider's error body, on one line.
func snippet(b []byte) string {
	s := strings.Join(strings.Fields(string(b)), " ")
	if len(s) > 200 {
		s = s[:200] + "…"
	}
	return s
}

// providerID picks the message id out of a JSON answer ("sid" in Twilio's
// API, "id" elsewhere); fallback when the answer has none.
func providerID(body []byte, fallback string) string {
	var v struct {
		SID string `json:"sid"`
		ID  string `json:"id"`
	}
	if json.Unmarshal(body, &v) == nil {
		if v.SID != "" {
			return v.SID
		}
		if v.ID != "" {
			return v.ID
		}
	}
	return fallback
}

// defaultHTTPTimeout bounds one provider call when the configuration sets
// none: a hung provider must fail the attempt, so the activity retries.
const defaultHTTPTimeout = 10 * time.Second

// httpClient is the configured client, or one with the given timeout
// (defaultHTTPTimeout when unset).
func httpClient(c *http.Client, timeout time.Duration) *http.Client {
	if c != nil {
		return c
	}
	if timeout <= 0 {
		timeout = defaultHTTPTimeout
	}
	return &http.Client{Timeout: timeout}
}
