// Package payloadcrypt encrypts what Rapport writes into Temporal: every
// payload (workflow and activity inputs and results, signals, queries'
// answers, markers, summaries, failure messages) leaves the process
// encrypted with AES-256-GCM, so a history read without the keys (the Web
// UI, `temporal workflow show`, an export, the Temporal database) holds
// no customer's email, phone, name or profile.
//
// # Keys
//
// Master keys come from RAPPORT_PAYLOAD_KEYS (EnvKeys), the first one
// active. Each customer has a data key of its own: 32 random bytes,
// created the first time one of the customer's payloads is encrypted,
// stored in PostgreSQL (customer_keys) only wrapped by the active master
// key. The payloads of a journey (workflow ID workflows.WorkflowID) are
// encrypted with its customer's data key; everything else (scans,
// reconcile) with the active master key. Deleting a customer's data key
// (store.DeleteCustomerKey) makes all their payloads, in every history,
// unreadable: crypto-shredding, since histories cannot be edited.
//
// # Payload format
//
// An encrypted payload has metadata encoding=binary/encrypted and
// encryption-key-id=<master key id> or customer:<customer id>; its data is
// a 12-byte random nonce, then the GCM ciphertext and tag of the original
// payload (metadata and data, protobuf-serialized), with the key id as
// additional authenticated data. A customer data key is stored as nonce ‖
// ciphertext ‖ tag under the master key, authenticated with the customer id.
//
// # Rotation
//
// Put a new master key first in RAPPORT_PAYLOAD_KEYS and keep the old
// ones after it: new payloads and new customer keys use the new key,
// everything written before still decrypts. Rewrap re-wraps the existing
// customer keys under the new key; a retired master key can be dropped
// once that has run and the namespace's retention has passed since.
//
// # Caching and erasure
//
// Unwrapped customer keys are cached per process for Options.KeyTTL
// (DefaultKeyTTL, one minute), least recently used evicted beyond
// Options.MaxCachedKeys. After DeleteCustomerKey, a process that had
// the key cached decrypts that customer's payloads for at most KeyTTL
// more (Codec.Forget ends it at once in the process that erases);
// afterwards they are gone for good.
package payloadcrypt
