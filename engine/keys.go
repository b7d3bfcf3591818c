package engine

// mappingKeys is the single table of keys the parser accepts in each kind of
// mapping. The parser reports any other key as unknown (with a suggestion
// from this table), and the schema test checks that
// schema/playbook.schema.json describes exactly these keys: "playbook" is
// the schema's root object, every other entry a $defs entry of that name.
var mappingKeys = map[string][]string{
	"playbook":      {"playbook", "description", "stage", "owner", "topic", "trigger", "entry", "goal", "exit_when", "policies", "tracking", "templates", "steps"},
	"trigger":       {"event", "events", "when", "every", "cron", "where", "date", "at", "manual"},
	"event_trigger": {"event", "when"},
	"entry":         {"reentry", "cooldown", "audience", "holdout", "global_control"},
	"goal":          {"event", "when", "within", "exit"},
	"policies":      {"quiet_hours", "frequency_cap"},
	"quiet_hours":   {"start", "end"},
	"tracking":      {"clicks", "opens"},
	"frequency_cap": {"max", "per", "action"},
	"variant":       {"subject", "text", "html"},
	"step":          {"id", "send", "wait", "on_event", "on_timeout", "if", "then", "else", "split", "update", "points", "coupon", "task", "goto", "exit"},
	"send":          {"channel", "template", "transactional"},
	"wait":          {"until", "event", "of", "for", "when", "timeout", "after_entry"},
	"event_branch":  {"of", "when", "steps"},
	"split_branch":  {"name", "weight", "steps"},
	"update":        {"set", "add_tags", "remove_tags", "tier", "stage"},
	"points":        {"award", "deduct", "reason"},
	"coupon":        {"kind", "value", "expires", "prefix"},
	"task":          {"assignee", "title", "due", "priority"},
}

// requiredKeys are the keys a mapping must have (checks that depend on
// other keys, like "cooldown with reentry: after", are in the compiler).
var requiredKeys = map[string][]string{
	"playbook":      {"playbook", "stage", "trigger", "steps"},
	"goal":          {"event", "within"},
	"quiet_hours":   {"start", "end"},
	"frequency_cap": {"max", "per"},
	"variant":       {"text"},
	"split_branch":  {"name", "weight"},
	"event_trigger": {"event"},
	"send":          {"channel", "template"},
	"points":        {"reason"},
	"coupon":        {"kind", "value", "expires"},
	"task":          {"assignee", "title"},
}

// actionKeys are the step keys that say what a step does; a step has
// exactly one of them.
var actionKeys = []string{"send", "wait", "if", "split", "update", "points", "coupon", "task", "goto", "exit"}

// siblingKeys are step keys that belong to an action.
var siblingKeys = map[string]string{"then": "if", "else": "if", "on_event": "wait", "on_timeout": "wait"}

// Enumerations of the language, shared by the parser and the schema test.
var (
	triggerForms  = []string{"event", "events", "every", "cron", "date", "manual"}
	triggerDates  = []string{"birthday", "signup_anniversary"}
	reentryValues = []string{"never", "always", "after"}
	capActions    = []string{"skip", "defer"}
	channels      = []string{"email", "sms", "webhook"}
	couponKinds   = []string{"percent", "amount"}
	priorities    = []string{"low", "normal", "high"}
	coreSetFields = ProfileFields
)

// ProfileFields are the core profile fields an update step may set (`set:
// {name: ...}`), besides attrs.<name>: the one list the compiler, the
// PostgreSQL store and the in-memory activities accept. Email and phone
// are not among them: an address comes from the customer, never from a
// playbook.
var ProfileFields = []string{"name", "locale", "timezone", "tier"}
