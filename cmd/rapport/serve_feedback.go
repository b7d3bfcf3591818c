package main

import (
	"context"
	"crypto/x509"
	"encoding/pem"
	"fmt"
	"io"
	"net/http"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/rapport-crm/rapport/api"
	"github.com/rapport-crm/rapport/feedback"
	"github.com/rapport-crm/rapport/unsubscribe"
)

// feedbackOptionsFromEnv reads the provider-event webhooks' and the
// tracker's settings (docs/operators.md, "Provider events"). Each key
// enables its endpoint; without any, the endpoints answer 404.
func feedbackOptionsFromEnv() (api.FeedbackOptions, error) {
	o := api.FeedbackOptions{
		MailgunKey:     []byte(os.Getenv("RAPPORT_MAILGUN_SIGNING_KEY")),
		TwilioToken:    os.Getenv("RAPPORT_TWILIO_AUTH_TOKEN"),
		PublicURL:      os.Getenv("RAPPORT_PUBLIC_URL"),
		TrackingSecret: []byte(os.Getenv("RAPPORT_TRACKING_SECRET")),
		SNSCerts:       newCertCache(&http.Client{Timeout: 10 * time.Second}).fetch,
	}
	for _, arn := range strings.Split(os.Getenv("RAPPORT_SES_TOPIC_ARNS"), ",") {
		if arn = strings.TrimSpace(arn); arn != "" {
			o.SESTopicARNs = append(o.SESTopicARNs, arn)
		}
	}
	if v := os.Getenv("RAPPORT_SENDGRID_WEBHOOK_PUBLIC_KEY"); v != "" {
		key, err := feedback.SendGridPublicKey(v)
		if err != nil {
			return o, fmt.Errorf("RAPPORT_SENDGRID_WEBHOOK_PUBLIC_KEY: %w", err)
		}
		o.SendGridKey = key
	}
	if o.TwilioToken != "" || len(o.TrackingSecret) > 0 {
		if err := unsubscribe.CheckPublicURL(o.PublicURL, false); err != nil {
			return o, fmt.Errorf("the Twilio status callback and tracked links need RAPPORT_PUBLIC_URL: %w", err)
		}
	}
	return o, nil
}

// certCache fetches SNS signing certificates once per URL: SNS signs
// every message with the same few.
type certCache struct {
	client *http.Client
	mu     sync.Mutex
	certs  map[string]*x509.Certificate
}

func newCertCache(c *http.Client) *certCache {
	return &certCache{client: c, certs: map[string]*x509.Certificate{}}
}

func (c *certCache) fetch(ctx context.Context, url string) (*x509.Certificate, error) {
	c.mu.Lock()
	cert := c.certs[url]
	c.mu.Unlock()
	if cert != nil {
		return cert, nil
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return nil, err
	}
	resp, err := c.client.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
	if err != nil || resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("GET %s: %s %v", url, resp.Status, err)
	}
	block, _ := pem.Decode(body)
	if block == nil {
		return nil, fmt.Errorf("GET %s: not a PEM certificate", url)
	}
	if cert, err = x509.ParseCertificate(block.Bytes); err != nil {
		return nil, fmt.Errorf("GET %s: %w", url, err)
	}
	c.mu.Lock()
	c.certs[url] = cert
	c.mu.Unlock()
	return cert, nil
}
