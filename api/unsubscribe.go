package api

import (
	"context"
	"errors"
	"html/template"
	"net/http"
	"strings"
)

// maxTokenLen bounds the unsubscribe token in the URL; real ones are a few
// hundred bytes.
const maxTokenLen = 2048

// pageText is the wording of the unsubscribe pages in one language.
type pageText struct {
	Lang, Title, Confirm, Button, Done, Invalid, Retry, NotOnFile string
	Topic                                                         map[string]string // consent topic → display name
	Channel                                                       map[string]string
}

// pageTexts holds the page languages; the customer's locale picks one by
// language prefix, then the browser's Accept-Language, English otherwise.
// Confirm and Done take the topic and the channel.
var pageTexts = map[string]pageText{
	"en": {
		Lang: "en", Title: "Unsubscribe",
		Confirm: "Stop receiving {topic} messages from us by {channel}?",
		Button:  "Unsubscribe",
		Done:    "You are unsubscribed from {topic} messages by {channel}. We are sorry to see you go.",
		Invalid: "This unsubscribe link is not valid or has expired. Please use the link in a recent message.",
		Retry:   "We could not process your request just now. Please try again in a few minutes.",
		NotOnFile: "This address is not on file with us any more, so there is nothing to unsubscribe: " +
			"we will not send you {topic} messages by {channel}.",
		Topic:   map[string]string{"marketing": "marketing", "service": "service", "loyalty": "loyalty programme", "surveys": "survey", "*": "all"},
		Channel: map[string]string{"email": "email", "sms": "SMS", "webhook": "app"},
	},
	"zh": {
		Lang: "zh", Title: "退订",
		Confirm:   "确定不再通过{channel}接收我们的{topic}消息吗？",
		Button:    "退订",
		Done:      "您已退订通过{channel}发送的{topic}消息。",
		Invalid:   "此退订链接无效或已过期，请使用最近一封消息中的链接。",
		Retry:     "暂时无法处理您的请求，请稍后再试。",
		NotOnFile: "我们已没有您的联系信息记录，无需退订：我们不会再通过{channel}向您发送{topic}消息。",
		Topic:     map[string]string{"marketing": "营销", "service": "服务", "loyalty": "会员", "surveys": "问卷", "*": "所有"},
		Channel:   map[string]string{"email": "电子邮件", "sms": "短信", "webhook": "应用"},
	},
}

var pageTmpl = template.Must(template.New("page").Parse(`<!doctype html>
<html lang="{{.Lang}}"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="robots" content="noindex">
<title>{{.Title}}</title>
<style>body{font-family:system-ui,sans-serif;max-width:32rem;margin:4rem auto;padding:0 1rem;line-height:1.5}button{font-size:1rem;padding:.5rem 1.5rem}</style>
</head><body>
<h1>{{.Title}}</h1>
<p>{{.Message}}</p>
{{if .Form}}<form method="post">
<input type="hidden" name="List-Unsubscribe" value="One-Click">
<button type="submit">{{.Button}}</button>
</form>{{end}}
</body></html>
`))

// page is one rendering of the template.
type page struct {
	Lang, Title, Message, Button string
	Form                         bool
}

// handleUnsubscribePage serves GET /u/{token}: a confirmation page. It
// changes nothing, since mail scanners follow links.
func (s *Server) handleUnsubscribePage(w http.ResponseWriter, r *http.Request) {
	if s.opts.Unsubscriber == nil {
		http.NotFound(w, r)
		return
	}
	token, ok := tokenOf(r)
	if !ok {
		s.renderInvalid(w, r)
		return
	}
	u, err := s.opts.Unsubscriber.Check(r.Context(), token, s.opts.Now())
	if errors.Is(err, ErrNotOnFile) {
		s.renderNotOnFile(w, r, u)
		return
	}
	if err != nil {
		s.renderFailure(w, r, err)
		return
	}
	t := texts(u.Locale, r)
	render(w, http.StatusOK, page{Lang: t.Lang, Title: t.Title, Message: t.describe(t.Confirm, u), Button: t.Button, Form: true})
}

// handleUnsubscribe serves POST /u/{token}: the RFC 8058 one-click
// unsubscribe (body List-Unsubscribe=One-Click) and the page's button.
func (s *Server) handleUnsubscribe(w http.ResponseWriter, r *http.Request) {
	if s.opts.Unsubscriber == nil {
		http.NotFound(w, r)
		return
	}
	r.Body = http.MaxBytesReader(w, r.Body, 4096)
	_ = r.ParseForm() // List-Unsubscribe=One-Click is informative only; the token decides
	token, ok := tokenOf(r)
	if !ok {
		s.renderInvalid(w, r)
		return
	}
	ctx, cancel := context.WithTimeout(context.WithoutCancel(r.Context()), applyTimeout)
	defer cancel()
	u, err := s.opts.Unsubscriber.Unsubscribe(ctx, token, s.opts.Now())
	if errors.Is(err, ErrNotOnFile) {
		s.renderNotOnFile(w, r, u)
		return
	}
	if err != nil {
		s.renderFailure(w, r, err)
		return
	}
	t := texts(u.Locale, r)
	render(w, http.StatusOK, page{Lang: t.Lang, Title: t.Title, Message: t.describe(t.Done, u)})
}

// tokenOf finds the token: in the path (/u/{token}), in the query
// (/unsubscribe?token=…, the link unsubscribe.URL makes) or in the form.
func tokenOf(r *http.Request) (string, bool) {
	token := r.PathValue("token")
	if token == "" {
		token = r.FormValue("token")
	}
	return token, token != "" && len(token) <= maxTokenLen
}

// renderFailure answers a bad link with the invalid page, anything else
// (database down, no secret configured) with a 503 asking to retry.
func (s *Server) renderFailure(w http.ResponseWriter, r *http.Request, err error) {
	if errors.Is(err, ErrInvalidToken) {
		s.renderInvalid(w, r)
		return
	}
	s.opts.Logger.Error("unsubscribe failed", "err", err)
	t := texts("", r)
	w.Header().Set("Retry-After", "60")
	render(w, http.StatusServiceUnavailable, page{Lang: t.Lang, Title: t.Title, Message: t.Retry})
}

// renderInvalid answers a bad, forged or expired token with 400 and no
// detail, so the page tells an attacker nothing about why.
func (s *Server) renderInvalid(w http.ResponseWriter, r *http.Request) {
	t := texts("", r)
	render(w, http.StatusBadRequest, page{Lang: t.Lang, Title: t.Title, Message: t.Invalid})
}

// renderNotOnFile answers a valid link whose customer is not on file with
// 200: the customer's wish (no more messages) already holds, and a 2xx
// tells a one-click sender not to retry.
func (s *Server) renderNotOnFile(w http.ResponseWriter, r *http.Request, u Unsubscription) {
	t := texts("", r)
	render(w, http.StatusOK, page{Lang: t.Lang, Title: t.Title, Message: t.describe(t.NotOnFile, u)})
}

func render(w http.ResponseWriter, status int, p page) {
	h := w.Header()
	h.Set("Content-Type", "text/html; charset=utf-8")
	h.Set("Cache-Control", "no-store")
	h.Set("Referrer-Policy", "no-referrer") // the token is in the URL
	h.Set("Content-Security-Policy", "default-src 'none'; style-src 'unsafe-inline'; form-action 'self'")
	w.WriteHeader(status)
	_ = pageTmpl.Execute(w, p)
}

// texts picks the page language: the token's locale first, then the
// browser's Accept-Language, then English.
func texts(locale string, r *http.Request) pageText {
	if t, ok := pageTexts[langOf(locale)]; ok {
		return t
	}
	for _, part := range strings.Split(r.Header.Get("Accept-Language"), ",") {
		tag, _, _ := strings.Cut(strings.TrimSpace(part), ";")
		if t, ok := pageTexts[langOf(tag)]; ok {
			return t
		}
	}
	return pageTexts["en"]
}

func langOf(tag string) string {
	lang, _, _ := strings.Cut(strings.ReplaceAll(tag, "_", "-"), "-")
	return strings.ToLower(lang)
}

// describe fills the topic's and channel's display names into a sentence.
func (t pageText) describe(sentence string, u Unsubscription) string {
	topic, ok := t.Topic[u.Topic]
	if !ok {
		topic = u.Topic
	}
	channel, ok := t.Channel[u.Channel]
	if !ok {
		channel = u.Channel
	}
	return strings.NewReplacer("{topic}", topic, "{channel}", channel).Replace(sentence)
}
