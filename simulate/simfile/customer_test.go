package simfile

import (
	"bytes"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/santhosh-tekuri/jsonschema/v6"
)

const customerSchema = "../../schema/customer.schema.json"

func compileCustomerSchema(t *testing.T) *jsonschema.Schema {
	t.Helper()
	f, err := os.Open(customerSchema)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	doc, err := jsonschema.UnmarshalJSON(f)
	if err != nil {
		t.Fatal(err)
	}
	c := jsonschema.NewCompiler()
	if err := c.AddResource("customer.schema.json", doc); err != nil {
		t.Fatal(err)
	}
	sch, err := c.Compile("customer.schema.json")
	if err != nil {
		t.Fatalf("schema does not compile: %v", err)
	}
	return sch
}

// schemaAccepts validates one document against the schema.
func schemaAccepts(t *testing.T, sch *jsonschema.Schema, src string) error {
	t.Helper()
	inst, err := jsonschema.UnmarshalJSON(strings.NewReader(src))
	if err != nil {
		return err
	}
	return sch.Validate(inst)
}

// docsExample is the customer file shown in docs/playbooks.md.
func docsExample(t *testing.T) string {
	t.Helper()
	doc, err := os.ReadFile("../../docs/playbooks.md")
	if err != nil {
		t.Fatal(err)
	}
	_, after, ok := bytes.Cut(doc, []byte("### The customer file"))
	if !ok {
		t.Fatal(`docs/playbooks.md has no section "The customer file"`)
	}
	_, block, ok := bytes.Cut(after, []byte("```json\n"))
	if !ok {
		t.Fatal("the customer file section has no json example")
	}
	src, _, _ := bytes.Cut(block, []byte("```"))
	return string(src)
}

// Every sample customer file and the documented example are valid for
// the schema and for the parser.
func TestCustomerSamplesMatchTheSchema(t *testing.T) {
	sch := compileCustomerSchema(t)
	files, err := filepath.Glob("../testdata/simulate/*.customer.json")
	if err != nil || len(files) < 2 {
		t.Fatalf("sample customer files: %v %v", files, err)
	}
	samples := map[string]string{"docs/playbooks.md": docsExample(t)}
	for _, f := range files {
		data, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		samples[f] = string(data)
	}
	for name, src := range samples {
		if err := schemaAccepts(t, sch, src); err != nil {
			t.Errorf("%s: schema: %v", name, err)
		}
		if _, err := ParseCustomer(name, []byte(src)); err != nil {
			t.Errorf("%s: parser: %v", name, err)
		}
	}
}

// The documented example reads as the docs say: dates as YYYY-MM-DD are
// midnight UTC, RFC 3339 times keep their offset, consents and points are
// kept.
func TestParseCustomerDocsExample(t *testing.T) {
	cf, err := ParseCustomer("docs", []byte(docsExample(t)))
	if err != nil {
		t.Fatal(err)
	}
	c := cf.Customer
	if !c.Birthday.Equal(time.Date(1991, 7, 30, 0, 0, 0, 0, time.UTC)) || !c.LastPurchaseAt.Equal(time.Date(2025, 12, 20, 0, 0, 0, 0, time.UTC)) {
		t.Errorf("dates: birthday %s, last purchase %s", c.Birthday, c.LastPurchaseAt)
	}
	if !c.SignupAt.Equal(time.Date(2025, 3, 2, 2, 15, 0, 0, time.UTC)) {
		t.Errorf("signup %s, want 02:15 UTC", c.SignupAt)
	}
	if c.Points != 340 || !slices.Equal(c.Tags, []string{"newsletter"}) || c.Attrs["industry"] != "design" {
		t.Errorf("points %d, tags %v, attrs %v", c.Points, c.Tags, c.Attrs)
	}
	want := []Consent{{"sms", "*", false}, {"email", "marketing", true}}
	if !slices.Equal(cf.Consents, want) {
		t.Errorf("consents %+v, want %+v", cf.Consents, want)
	}
}

// The schema and the parser accept and refuse the same documents.
func TestCustomerSchemaAndParserAgree(t *testing.T) {
	sch := compileCustomerSchema(t)
	cases := []struct {
		src string
		ok  bool
	}{
		{`{"id": "c1"}`, true},
		{`{"id": "c1", "birthday": "1990-01-12"}`, true},
		{`{"id": "c1", "birthday": "1990-01-12T00:00:00Z"}`, true},
		{`{"id": "c1", "signup_at": "2026-01-05T09:00:00.5+08:00"}`, true},
		{`{"id": "c1", "points": 0, "order_count": 0, "tags": [], "attrs": {}, "consents": []}`, true},
		{`{"id": "c1", "consents": [{"channel": "webhook", "topic": "loyalty", "granted": true}]}`, true},
		{`{}`, false},
		{`{"id": ""}`, false},
		{`{"id": "c1", "nickname": "A"}`, false},
		{`{"ID": "c1"}`, false},
		{`{"id": "c1", "birthday": "12/01/1990"}`, false},
		{`{"id": "c1", "birthday": "1990-13-12"}`, false},
		{`{"id": "c1", "birthday": "1990-01-12 09:00"}`, false},
		{`{"id": "c1", "birthday": ""}`, false},
		{`{"id": "c1", "points": -1}`, false},
		{`{"id": "c1", "points": 1.5}`, false},
		{`{"id": "c1", "order_count": -2}`, false},
		{`{"id": "c1", "tags": "vip"}`, false},
		{`{"id": "c1", "churn_risk": "yes"}`, false},
		{`{"id": "c1", "consents": [{"channel": "fax", "topic": "*", "granted": false}]}`, false},
		{`{"id": "c1", "consents": [{"channel": "email", "topic": "", "granted": false}]}`, false},
		{`{"id": "c1", "consents": [{"channel": "email", "topic": "*"}]}`, false},
		{`{"id": "c1", "consents": [{"channel": "email", "topic": "*", "granted": false, "source": "x"}]}`, false},
	}
	for _, c := range cases {
		schemaErr := schemaAccepts(t, sch, c.src)
		_, parseErr := ParseCustomer("c.json", []byte(c.src))
		if (schemaErr == nil) != c.ok || (parseErr == nil) != c.ok {
			t.Errorf("%s: schema says %v, parser says %v; want ok=%v", c.src, schemaErr, parseErr, c.ok)
		}
	}
}

// The parser's list of fields is the schema's.
func TestCustomerKeysAreTheSchemas(t *testing.T) {
	data, err := os.ReadFile(customerSchema)
	if err != nil {
		t.Fatal(err)
	}
	inst, err := jsonschema.UnmarshalJSON(bytes.NewReader(data))
	if err != nil {
		t.Fatal(err)
	}
	props := inst.(map[string]any)["properties"].(map[string]any)
	var keys []string
	for k := range props {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	want := slices.Sorted(slices.Values(CustomerKeys))
	if !slices.Equal(keys, want) {
		t.Fatalf("schema properties %v, parser keys %v", keys, want)
	}
}

// A value of the wrong kind is named with its field and what it takes, in
// words a marketer reads, not Go's type names.
func TestParseCustomerWrongKinds(t *testing.T) {
	for body, want := range map[string]string{
		`{"id":"c1","points":"lots"}`:            "c.json: points: expected a whole number, not text",
		`{"id":"c1","order_count":2.5}`:          "c.json: order_count: expected a whole number, not the number 2.5",
		`{"id":"c1","lifetime_value":"x"}`:       "c.json: lifetime_value: expected a number, not text",
		`{"id":"c1","churn_risk":1}`:             "c.json: churn_risk: expected true or false, not a number",
		`{"id":"c1","tags":"vip"}`:               "c.json: tags: expected a list of text, not a single text",
		`{"id":"c1","tags":[1]}`:                 "c.json: tags: expected a list of text, not a list holding a number",
		`{"id":"c1","attrs":[1]}`:                "c.json: attrs: expected a mapping, not a list",
		`{"id":"c1","consents":[{"channel":5}]}`: "c.json: consents.channel: expected text, not a number",
	} {
		_, err := ParseCustomer("c.json", []byte(body))
		if err == nil || err.Error() != want {
			t.Errorf("%s: err %v, want %q", body, err, want)
		}
	}
}
