package channels

import (
	"context"
	"log/slog"
)

// Log is the development channel: it writes each message to a logger
// instead of delivering it, and always succeeds. Only the message is
// logged, never a channel's configuration, so no secret reaches the log.
type Log struct {
	Name   string // channel name shown in the log, e.g. "email"
	Logger *slog.Logger
}

// Deliver logs m and returns a provider id derived from its key.
func (l *Log) Deliver(ctx context.Context, m Message) (string, error) {
	lg := l.Logger
	if lg == nil {
		lg = slog.Default()
	}
	channel := m.Channel
	if channel == "" {
		channel = l.Name
	}
	lg.LogAttrs(ctx, slog.LevelInfo, "message",
		slog.String("channel", channel),
		slog.String("key", m.Key),
		slog.String("to", m.To),
		slog.String("template", m.Template),
		slog.String("locale", m.Locale),
		slog.String("subject", m.Subject),
		slog.String("text", m.Text),
	)
	return "log-" + keyHash(m.Key), nil
}
