// schema-check: validate JSON documents against a JSON Schema with ajv in
// strict mode, as an independent second opinion beside the Go validator.
//
//   node peers/schema-check.mjs [schema.json] < documents.ndjson
//
// The schema defaults to ../schema/playbook.schema.json (beside this
// folder). Standard input holds one JSON document per line; for each line,
// in order, standard output gets one line of JSON:
//
//   {"valid": true}
//   {"valid": false, "errors": [{"path": "/trigger", "schema": "#/...", "message": "..."}]}
//
// Exit status: 0 when every document was checked (valid or not), 2 when the
// schema does not compile under strict mode or a line is not JSON; the
// reason goes to standard error.
import { readFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import Ajv2020 from "ajv/dist/2020.js";

const here = dirname(fileURLToPath(import.meta.url));
const schemaPath = process.argv[2] ?? join(here, "..", "schema", "playbook.schema.json");

function fail(msg) {
  process.stderr.write(`schema-check: ${msg}\n`);
  process.exit(2);
}

let validate;
try {
  const schema = JSON.parse(readFileSync(schemaPath, "utf8"));
  // strict: true turns every strict-mode warning (unknown keywords, union
  // types, keywords without their type, ignored keywords, required keys
  // not among the properties) into a compile error.
  const ajv = new Ajv2020({ strict: true, allErrors: true });
  validate = ajv.compile(schema);
} catch (err) {
  fail(`${schemaPath}: ${err.message}`);
}

const input = readFileSync(0, "utf8");
const out = [];
let lineNo = 0;
for (const line of input.split("\n")) {
  lineNo++;
  if (line.trim() === "") continue;
  let doc;
  try {
    doc = JSON.parse(line);
  } catch (err) {
    fail(`line ${lineNo}: not JSON: ${err.message}`);
  }
  if (validate(doc)) {
    out.push(JSON.stringify({ valid: true }));
  } else {
    const errors = validate.errors.map((e) => ({
      path: e.instancePath,
      schema: e.schemaPath,
      message: e.message,
    }));
    out.push(JSON.stringify({ valid: false, errors }));
  }
}
process.stdout.write(out.join("\n") + (out.length ? "\n" : ""));
