package main

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"regexp"
	"strings"
	"time"

	"github.com/spf13/cobra"
)

func init() {
	rootCmd.AddCommand(newTrackCmd(), newIdentifyCmd())
}

// newTrackCmd builds `rapport track` (a constructor, so tests get fresh flags).
func newTrackCmd() *cobra.Command {
	track := &cobra.Command{
		Use:   "track --customer ID --event NAME [--prop k=v ...] [--message-id ID] [--time RFC3339]",
		Short: "Send a customer event to the event API (POST /v1/track)",
		Long: `Send a customer event to the event API (POST /v1/track).

The event API stores the name as the word playbooks use: ASCII letters
lowercased, digits kept, every run of other characters between them one
underscore, so "Order Completed" (Segment's name) reaches
trigger: { event: order_completed }; a name that makes no word that way
(non-ASCII letters, a leading digit) is kept as sent (docs/event-api.md,
Event names). Property values that look like a JSON
number, true, false or null are sent as such; quote a value to keep it a
string (--prop 'zip="01234"'). amount (or revenue, total, value), currency,
order_id, category and score are also the event's typed fields.

A message id is generated when --message-id is not given, and printed: to
retry a call that failed, send it again with the same --message-id so the
event counts once.` + apiClientEnvHelp,
		Args: cobra.NoArgs,
		RunE: runTrack,
	}
	track.Flags().String("customer", "", "customer id (required)")
	track.Flags().String("event", "", "event name (required)")
	track.Flags().StringArray("prop", nil, "event property k=v (repeatable)")
	track.Flags().String("message-id", "", "idempotency key of the event (default: generated)")
	track.Flags().String("time", "", "when it happened, RFC 3339 (default: now)")
	addAPIClientFlags(track)
	return track
}

// newIdentifyCmd builds `rapport identify`.
func newIdentifyCmd() *cobra.Command {
	identify := &cobra.Command{
		Use:   "identify --customer ID [--trait k=v ...]",
		Short: "Create or update a customer profile through the event API (POST /v1/identify)",
		Long: `Create or update a customer profile through the event API (POST /v1/identify).

Traits email, phone, name (or firstName and lastName), locale, timezone,
birthday (YYYY-MM-DD), createdAt, tier and stage fill the profile's fields;
every other trait is kept in customer.attrs. Traits not given keep their
value; --trait k=null clears one.` + apiClientEnvHelp,
		Args: cobra.NoArgs,
		RunE: runIdentify,
	}
	identify.Flags().String("customer", "", "customer id (required)")
	identify.Flags().StringArray("trait", nil, "profile trait k=v (repeatable)")
	addAPIClientFlags(identify)
	return identify
}

func addAPIClientFlags(c *cobra.Command) {
	c.Flags().String("api-url", serveEnv("RAPPORT_API_URL", "http://localhost:8080"), "base URL of rapport serve")
	c.Flags().Duration("timeout", 30*time.Second, "how long to wait for the API")
}

const apiClientEnvHelp = `

Environment: RAPPORT_API_URL (default http://localhost:8080), RAPPORT_API_KEY (required).`

func runTrack(cmd *cobra.Command, _ []string) error {
	f := cmd.Flags()
	customer, _ := f.GetString("customer")
	event, _ := f.GetString("event")
	props, _ := f.GetStringArray("prop")
	messageID, _ := f.GetString("message-id")
	at, _ := f.GetString("time")
	if customer == "" || event == "" {
		return errors.New("--customer and --event are required")
	}
	properties, err := parseKeyValues("--prop", props)
	if err != nil {
		return err
	}
	if messageID == "" {
		messageID = newMessageID()
	}
	body := map[string]any{"userId": customer, "event": event, "messageId": messageID, "properties": properties}
	if at != "" {
		body["timestamp"] = at
	}
	if err := postAPI(cmd, "/v1/track", body); err != nil {
		return fmt.Errorf("%w (message id %s: retry with --message-id %s)", err, messageID, messageID)
	}
	fmt.Fprintf(cmd.OutOrStdout(), "tracked %s for %s (message id %s)\n", event, customer, messageID)
	return nil
}

func runIdentify(cmd *cobra.Command, _ []string) error {
	f := cmd.Flags()
	customer, _ := f.GetString("customer")
	kv, _ := f.GetStringArray("trait")
	if customer == "" {
		return errors.New("--customer is required")
	}
	traits, err := parseKeyValues("--trait", kv)
	if err != nil {
		return err
	}
	body := map[string]any{"userId": customer, "messageId": newMessageID(), "traits": traits}
	if err := postAPI(cmd, "/v1/identify", body); err != nil {
		return err
	}
	fmt.Fprintf(cmd.OutOrStdout(), "identified %s (%d traits)\n", customer, len(traits))
	return nil
}

// jsonScalarRe matches values sent as JSON rather than as strings: JSON
// numbers in canonical form (so "007" and "+8613800000000" stay strings),
// booleans and null.
var jsonScalarRe = regexp.MustCompile(`^(-?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)?|true|false|null)$`)

// parseKeyValues turns k=v arguments into a JSON object. A value that is a
// JSON number, boolean or null, or a double-quoted JSON string, is decoded;
// anything else is a string.
func parseKeyValues(flag string, args []string) (map[string]any, error) {
	out := make(map[string]any, len(args))
	for _, a := range args {
		k, v, ok := strings.Cut(a, "=")
		if !ok || strings.TrimSpace(k) == "" {
			return nil, fmt.Errorf("%s %q: want key=value", flag, a)
		}
		if _, dup := out[k]; dup {
			return nil, fmt.Errorf("%s %s given twice", flag, k)
		}
		out[k] = v
		if jsonScalarRe.MatchString(v) || (len(v) >= 2 && v[0] == '"' && v[len(v)-1] == '"') {
			var decoded any
			if err := json.Unmarshal([]byte(v), &decoded); err != nil {
				return nil, fmt.Errorf("%s %s: %s is not a valid quoted string: %v", flag, k, v, err)
			}
			out[k] = decoded
		}
	}
	return out, nil
}

// newMessageID is a random idempotency key for one CLI call.
func newMessageID() string {
	b := make([]byte, 12)
	_, _ = rand.Read(b)
	return "cli-" + hex.EncodeToString(b)
}

// postAPI sends body to the event API and turns an error answer into an
// error carrying the server's message.
func postAPI(cmd *cobra.Command, path string, body any) error {
	base, _ := cmd.Flags().GetString("api-url")
	timeout, _ := cmd.Flags().GetDuration("timeout")
	key := os.Getenv("RAPPORT_API_KEY")
	if key == "" {
		return errors.New("RAPPORT_API_KEY is not set")
	}
	payload, err := json.Marshal(body)
	if err != nil {
		return fmt.Errorf("encode request: %w", err)
	}
	ctx, cancel := context.WithTimeout(cmd.Context(), timeout)
	defer cancel()
	url := strings.TrimRight(base, "/") + path
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, url, bytes.NewReader(payload))
	if err != nil {
		return fmt.Errorf("request %s: %w", url, err)
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Authorization", "Bearer "+key)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return fmt.Errorf("POST %s: %w", url, err)
	}
	defer resp.Body.Close()
	answer, _ := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
	if resp.StatusCode/100 == 2 {
		return nil
	}
	var e struct {
		Error string `json:"error"`
	}
	if json.Unmarshal(answer, &e) != nil || e.Error == "" {
		e.Error = strings.TrimSpace(string(answer))
	}
	if resp.StatusCode == http.StatusServiceUnavailable {
		return fmt.Errorf("POST %s: %s: %s; the API asks to retry later (Retry-After %s)", url, resp.Status, e.Error, resp.Header.Get("Retry-After"))
	}
	return fmt.Errorf("POST %s: %s: %s", url, resp.Status, e.Error)
}
