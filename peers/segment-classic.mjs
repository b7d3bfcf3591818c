// Sends segmentCalls with Segment's classic library (analytics-node 6),
// which posts {batch, timestamp, sentAt} to /v1/batch and does not retry a
// 4xx. Prints one JSON line per HTTP answer: {"status":…, "body":…}.
// Used by api/peers_test.go.
import Analytics from 'analytics-node';
import { args, segmentCalls } from './segment-calls.mjs';

const { url, writeKey, prefix } = args();
const analytics = new Analytics(writeKey, { host: url, flushAt: 100, flushInterval: 60000, retryCount: 1 });
analytics.axiosInstance.interceptors.response.use(
  (res) => { console.log(JSON.stringify({ status: res.status, body: res.data })); return res; },
  (err) => { console.log(JSON.stringify({ status: err.response?.status ?? 0, body: err.response?.data ?? String(err) })); throw err; },
);
for (const [type, msg] of segmentCalls(prefix)) {
  analytics[type](msg);
}
await analytics.flush();
