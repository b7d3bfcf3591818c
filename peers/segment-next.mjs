// Sends segmentCalls with Segment's current library
// (@segment/analytics-node 3), gzipped when GZIP=1 through the library's
// own httpClient hook. Prints one JSON line per HTTP answer:
// {"status":…, "body":…}. Used by api/peers_test.go.
import { gzipSync } from 'node:zlib';
import { Analytics } from '@segment/analytics-node';
import { args, segmentCalls } from './segment-calls.mjs';

const { url, writeKey, prefix } = args();

// answering sends a request and prints its answer.
class AnsweringClient {
  async makeRequest(o) {
    const headers = { ...o.headers };
    let body = o.body;
    if (process.env.GZIP === '1') {
      body = gzipSync(body);
      headers['Content-Encoding'] = 'gzip';
    }
    const res = await fetch(o.url, { method: o.method, headers, body });
    console.log(JSON.stringify({ status: res.status, body: await res.clone().json().catch(() => null) }));
    return res;
  }
}

const analytics = new Analytics({
  writeKey, host: url, flushAt: 100, flushInterval: 60000, maxRetries: 1, httpClient: new AnsweringClient(),
});
analytics.on('error', (err) => console.error('analytics error:', err));
for (const [type, msg] of segmentCalls(prefix)) {
  analytics[type](msg);
}
await analytics.closeAndFlush({ timeout: 20000 });
